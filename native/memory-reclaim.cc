/*
 * memory-reclaim: a Node addon giving memory back to the kernel after a burst, for
 * `shmlab serve` (cli/memory-reclaim.ts). Two functions:
 *
 * lowMemory(): v8::Isolate::MemoryPressureNotification(kCritical), then back to kNone.
 *   "Allows the host application to provide the V8 embedder with information about the
 *   memory pressure" (v8-isolate.h); on the isolate's own thread a critical level runs a
 *   full GC that reduces the memory footprint at once: dead ArrayBuffers (1 MiB messages,
 *   4 MiB textures, a swapped-out frames buffer) are freed, and the young generation, which
 *   grows to 2 x 16 MiB semi-spaces under load and is never shrunk by a plain gc() or by
 *   idleness (V8 11.3: Heap::ReduceNewSpaceSize runs only for memory-reducing GCs or low
 *   allocation throughput), goes back to its initial size. LowMemoryNotification does the
 *   same with up to seven GCs in a row, about twice the pause. The level is set back to
 *   kNone at once: left at critical, V8 would keep tuning every later GC for memory.
 *
 * mallocTrim(): glibc's malloc_trim(0). Node allocates ArrayBuffer backing stores with
 *   malloc. After a burst of MiB-sized buffers glibc raises its mmap threshold ("the
 *   threshold is adjusted upward to the size of the freed chunk", mallopt(3)), so later
 *   ones come from the heap, and free() gives a heap chunk back only where it borders the
 *   heap's top. malloc_trim(3) "attempts to release free memory from the heap": since glibc
 *   2.8, free pages in every arena, not only at the top (madvise MADV_DONTNEED). Returns
 *   whether memory was released.
 */
#include <malloc.h>
#include <node.h>

namespace {

void LowMemory(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
}

void MallocTrim(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetReturnValue().Set(malloc_trim(0) == 1);
}

void Init(v8::Local<v8::Object> exports) {
  NODE_SET_METHOD(exports, "lowMemory", LowMemory);
  NODE_SET_METHOD(exports, "mallocTrim", MallocTrim);
}

}  // namespace

NODE_MODULE(NODE_GYP_MODULE_NAME, Init)
