/**
 * The worker thread of load-off-thread.ts: reads the trees it is asked for and posts each snapshot back as
 * plain data, with the buffers its objects are stored in transferred (object-store.ts). An exception becomes a
 * reply too (an uncaught one would end the worker and every load in it).
 */
import { parentPort } from "node:worker_threads";
import { readManifestTree, type LoadOptions } from "./load.ts";
import { toWire } from "./load-off-thread.ts";

parentPort!.on("message", ({ id, root, options }: { id: number; root: string; options: LoadOptions }) => {
  readManifestTree(root, options).then(
    (tree) => {
      const { wire, transfer } = toWire(tree);
      parentPort!.postMessage({ id, snapshot: wire }, transfer);
    },
    (error: unknown) => parentPort!.postMessage({ id, error: error instanceof Error ? error.message : String(error) }),
  );
});
