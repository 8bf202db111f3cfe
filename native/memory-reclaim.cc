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
 *
 * mallocStats(): glibc's own account of its heap, for GET /health: mallinfo2(3) summed
 *   over every arena ("arena": bytes obtained with sbrk/mmap for the arenas' heaps,
 *   "mmapped": chunks mmap()ed on their own, "inUse": allocated, "free": free chunks
 *   glibc keeps, "topFree": the releasable top of the main heap) and the number of arenas,
 *   counted from malloc_info(3)'s "<heap nr=" elements (glibc makes one per thread that
 *   met a locked arena, up to 8 x cores; each keeps its free chunks to itself).
 */
#include <malloc.h>
#include <node.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

void LowMemory(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
}

void MallocTrim(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetReturnValue().Set(malloc_trim(0) == 1);
}

int CountArenas() {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  if (!f) return -1;
  int n = malloc_info(0, f) == 0 ? 0 : -1;
  fclose(f);
  for (const char* p = buf; n >= 0 && (p = strstr(p, "<heap nr=")) != nullptr; p++) n++;
  free(buf);
  return n;
}

void MallocStats(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> ctx = isolate->GetCurrentContext();
  v8::Local<v8::Object> o = v8::Object::New(isolate);
  auto set = [&](const char* k, double v) {
    o->Set(ctx, v8::String::NewFromUtf8(isolate, k).ToLocalChecked(), v8::Number::New(isolate, v))
        .Check();
  };
  struct mallinfo2 mi = mallinfo2();
  set("arena", static_cast<double>(mi.arena));
  set("mmapped", static_cast<double>(mi.hblkhd));
  set("inUse", static_cast<double>(mi.uordblks));
  set("free", static_cast<double>(mi.fordblks));
  set("topFree", static_cast<double>(mi.keepcost));
  set("arenas", CountArenas());
  args.GetReturnValue().Set(o);
}

void Init(v8::Local<v8::Object> exports) {
  NODE_SET_METHOD(exports, "lowMemory", LowMemory);
  NODE_SET_METHOD(exports, "mallocTrim", MallocTrim);
  NODE_SET_METHOD(exports, "mallocStats", MallocStats);
}

}  // namespace

NODE_MODULE(NODE_GYP_MODULE_NAME, Init)
