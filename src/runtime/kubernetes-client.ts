/**
 * The official Kubernetes client (@kubernetes/client-node), loaded without the parts Ruriko never uses. Its entry
 * point loads every API group's generated code and all 757 model modules at once (~31 MB of JavaScript; importing
 * it took a process from 42 to ~120 MiB RSS), of which the runtime calls two groups (core/v1 and apps/v1) and meets
 * a few dozen models. What is loaded is the client's own code, unchanged: its KubeConfig and authentication, its
 * Watch and informers, and for the two groups its generated request factories, response processors and object
 * serializer; the generated modules that would load the rest are trimmed as they are loaded
 * (kubernetes-client-trim.ts, by a load hook, node:module registerHooks, as docker-client.ts does for dockerode).
 *
 * The hook is registered when this module is first evaluated, before it imports the client's modules (by path:
 * the package has no exports map), so every Ruriko module takes the client's values from here. A process that
 * loaded the client's entry point before (a test importing the package itself) simply has it whole.
 */
import type * as Client from "@kubernetes/client-node";
import { registerHooks } from "node:module";
import { lazyModels, trimIndex, trimObjectParamApi, trimObservableApi } from "./kubernetes-client-trim.ts";

/** The API groups the runtime calls (kubernetes-runtime.ts, kubernetes-informers.ts). */
const GROUPS = ["CoreV1", "AppsV1"] as const;

const DIST = "/@kubernetes/client-node/dist/";

/** By the end of a generated module's URL: how to trim its text. */
const TRIMS: Array<[string, (source: string) => string | undefined]> = [
  ["gen/index.js", (s) => trimIndex(s, GROUPS)],
  ["gen/types/ObservableAPI.js", (s) => trimObservableApi(s, GROUPS)],
  ["gen/types/ObjectParamAPI.js", (s) => trimObjectParamApi(s, GROUPS)],
  ["gen/models/ObjectSerializer.js", lazyModels],
];

/** Generated modules whose text was not as expected, so loaded whole (a client version the trims do not know). */
export const untrimmed: string[] = [];

function trimOnLoad(): void {
  registerHooks({
    load(url, context, next) {
      const trim = TRIMS.find(([file]) => url.endsWith(DIST + file));
      const loaded = next(url, context);
      if (!trim || loaded.source === undefined || loaded.source === null) return loaded;
      const trimmed = trim[1](typeof loaded.source === "string" ? loaded.source : Buffer.from(loaded.source as Uint8Array).toString("utf8"));
      if (trimmed === undefined) {
        untrimmed.push(trim[0]);
        return loaded;
      }
      return { ...loaded, source: trimmed };
    },
  });
}

trimOnLoad();

const [config, api, informer, middleware, patch] = await Promise.all([
  import("@kubernetes/client-node/dist/config.js"),
  import("@kubernetes/client-node/dist/gen/index.js"),
  import("@kubernetes/client-node/dist/informer.js"),
  import("@kubernetes/client-node/dist/middleware.js"),
  import("@kubernetes/client-node/dist/patch.js"),
]);

export const KubeConfig: typeof Client.KubeConfig = config.KubeConfig;
export const CoreV1Api: typeof Client.CoreV1Api = api.CoreV1Api;
export const AppsV1Api: typeof Client.AppsV1Api = api.AppsV1Api;
export const makeInformer: typeof Client.makeInformer = informer.makeInformer;
export const setHeaderOptions: typeof Client.setHeaderOptions = middleware.setHeaderOptions;
export const PatchStrategy: typeof Client.PatchStrategy = patch.PatchStrategy;

/** Port forwarding (`--kube-acp-access port-forward` only): it brings a WebSocket client with it. */
export async function loadPortForward(): Promise<typeof Client.PortForward> {
  return (await import("@kubernetes/client-node/dist/portforward.js")).PortForward;
}
