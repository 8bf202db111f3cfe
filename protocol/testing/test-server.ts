/**
 * A protocol-level test server: the protocol layer plus the smallest compositor that makes
 * a session meaningful, on the real simulated kernel. It is what the protocol tests, the
 * example client (examples/ws-client.ts) and the protocol benchmark talk to until the real
 * compositor (compositor/) serves `shmlab serve`.
 *
 * It reads committed buffers with pread(2) from its own process (a kernel access: never a
 * signal), so it cannot crash of SIGBUS; it is not a policy and takes no position on one.
 * Its wl_shm checks are libwayland's (src/wayland-shm.c), quoted where they are made.
 */

import { onErrno } from "../../shm/expected-errors.ts";
import { Kernel } from "../../shm/kernel.ts";
import type { Process } from "../../shm/process.ts";
import { ProtocolClient } from "../client.ts";
import { interfaceError } from "../errors.ts";
import {
  ProcessSyscallGateway,
  processFileInspector,
  remoteFdBridge,
  serverFdBridge,
  workerFdBridge,
} from "../kernel-gateway.ts";
import { SHM_ERROR } from "../schema.ts";
import { ProtocolServer, type Resource, type ServerClient, type ServerOptions } from "../server.ts";
import { createPair } from "../transports/pair.ts";
import { listenWebSocket, type WebSocketListener } from "../transports/websocket.ts";

export interface Commit {
  clientId: number;
  surface: number;
  width: number;
  height: number;
  stride: number;
  /** The buffer's bytes as the compositor read them (short if the file shrank). */
  bytes: Uint8Array;
}

interface PoolData {
  fd: number;
  size: number;
  refs: number;
  destroyed: boolean;
}
interface BufferData {
  pool: PoolData;
  offset: number;
  width: number;
  height: number;
  stride: number;
  format: number;
}
interface SurfaceData {
  pending: number; // buffer id, 0 for none
  frames: number[];
}

export interface TestServer {
  readonly kernel: Kernel;
  readonly compositor: Process;
  readonly server: ProtocolServer;
  readonly commits: Commit[];
  /** A client in this thread, with its own process: [client, its process, server side]. */
  connectLocal(name?: string): { client: ProtocolClient; proc: Process; remote: ServerClient };
  /** Starts a WebSocket listener on 127.0.0.1; every connection gets a process of its own. */
  listen(port?: number): Promise<WebSocketListener>;
}

const FORMATS = [0, 1]; // argb8888, xrgb8888: "All renderers should support argb8888 and xrgb8888"

export function createTestServer(opts: ServerOptions & { kernel?: Kernel } = {}): TestServer {
  const kernel = opts.kernel ?? new Kernel();
  const compositor = kernel.spawn("compositor");
  const server = new ProtocolServer({ files: processFileInspector(compositor), ...opts });
  const commits: Commit[] = [];

  const closeFd = (fd: number) => {
    // EBADF: the fd is the server's; it cannot already be closed unless the test did it.
    onErrno(["EBADF"], () => compositor.close(fd), undefined);
  };
  const unrefPool = (p: PoolData) => {
    if (--p.refs === 0) closeFd(p.fd);
  };

  server.addGlobal("wl_compositor", 4);
  server.addGlobal("wl_shm", 2, (r) => {
    for (const f of FORMATS) r.client.postEvent(r.id, "format", [f]);
  });

  server.implement("wl_compositor", {
    create_surface: (r, args) => {
      const s = r.client.resource(args[0])!;
      s.data = { pending: 0, frames: [] } satisfies SurfaceData;
    },
  });

  server.implement("wl_shm", {
    create_pool: (r, args) => {
      const [id, fd, size] = args;
      // wayland-shm.c shm_create_pool: "if (size <= 0) { wl_resource_post_error(resource,
      // WL_SHM_ERROR_INVALID_STRIDE, "invalid size (%d)", size);"
      if (size <= 0) {
        closeFd(fd);
        throw interfaceError(r.id, SHM_ERROR.invalid_stride, `invalid size (${size})`);
      }
      const pool: PoolData = { fd, size, refs: 1, destroyed: false };
      const res = r.client.resource(id)!;
      res.data = pool;
      res.onDestroy = () => {
        pool.destroyed = true;
        unrefPool(pool);
      };
    },
  });

  server.implement("wl_shm_pool", {
    create_buffer: (r, args) => {
      const [id, offset, width, height, stride, format] = args;
      const pool = r.data as PoolData;
      if (!FORMATS.includes(format))
        throw interfaceError(
          r.id,
          SHM_ERROR.invalid_format,
          `invalid format 0x${format.toString(16)}`,
        );
      // wayland-shm.c shm_pool_create_buffer: "if (offset < 0 || width <= 0 || height <= 0 ||
      // stride < width || INT32_MAX / stride <= height || offset > pool->size - stride * height)"
      if (
        offset < 0 ||
        width <= 0 ||
        height <= 0 ||
        stride < width ||
        Math.trunc(0x7fffffff / stride) <= height ||
        offset > pool.size - stride * height
      )
        throw interfaceError(
          r.id,
          SHM_ERROR.invalid_stride,
          `invalid width, height or stride (${width}x${height}, ${stride})`,
        );
      pool.refs++;
      const b = r.client.resource(id)!;
      b.data = { pool, offset, width, height, stride, format } satisfies BufferData;
      b.onDestroy = () => unrefPool(pool);
    },
    resize: (r, args) => {
      const size = args[0];
      const pool = r.data as PoolData;
      // wayland-shm.c shm_pool_resize: "if (size < pool->size) { wl_resource_post_error(
      // resource, WL_SHM_ERROR_INVALID_FD, "shrinking pool invalid");"
      if (size < pool.size && !server.variant.rules.poolsMayShrink)
        throw interfaceError(r.id, SHM_ERROR.invalid_fd, "shrinking pool invalid");
      pool.size = size;
    },
  });

  server.implement("wl_surface", {
    attach: (r, args) => {
      (r.data as SurfaceData).pending = args[0];
    },
    frame: (r, args) => {
      (r.data as SurfaceData).frames.push(args[0]);
    },
    commit: (r) => {
      const s = r.data as SurfaceData;
      const c = r.client;
      const buf = s.pending ? c.resource(s.pending) : undefined;
      if (buf) {
        const b = buf.data as BufferData;
        const bytes = compositor.pread(b.pool.fd, b.stride * b.height, b.offset);
        commits.push({
          clientId: c.id,
          surface: r.id,
          width: b.width,
          height: b.height,
          stride: b.stride,
          bytes,
        });
        c.postEvent(buf.id, "release");
      }
      for (const f of s.frames.splice(0))
        if (c.resource(f)) c.postEvent(f, "done", [server.nextSerial()]);
    },
  });

  return {
    kernel,
    compositor,
    server,
    commits,
    connectLocal(name = "client") {
      const proc = kernel.spawn(name);
      const [ct, st] = createPair();
      const remote = server.connect(st, { fds: serverFdBridge(kernel, compositor), label: name });
      const client = new ProtocolClient(ct, {
        schema: server.schema,
        fds: workerFdBridge(kernel, proc),
      });
      return { client, proc, remote };
    },
    listen(port = 0) {
      let n = 0;
      return listenWebSocket({
        port,
        onConnection: (t, who) => {
          const proc = kernel.spawn(`remote-${++n}`);
          server.connect(t, {
            fds: remoteFdBridge(kernel, proc, compositor),
            syscalls: new ProcessSyscallGateway(proc),
            label: who,
          });
        },
      });
    },
  };
}

/** For tests: the Resource type re-exported so suites need not reach into server.ts. */
export type { Resource };
