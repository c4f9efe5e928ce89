/**
 * What each request to the API server is, in the API server's own terms (its `verb` and `resource`, as in its
 * audit log and `apiserver_request_total`), told to a counter as the request is sent: serve exports it as
 * `ruriko_kubernetes_requests_total`, so an operator sees what Ruriko costs the cluster per agent, and the
 * kwok bench reads it instead of putting a counting proxy between Ruriko and the cluster.
 */
import type { KubeConfig, RequestContext } from "@kubernetes/client-node";

export interface ApiRequestKind {
  /** get, list, watch, create, update, patch, delete, deletecollection; `discovery` for /api, /apis, /version… */
  verb: string;
  /** The resource, with its subresource after a slash (`pods`, `pods/portforward`); "" for discovery. */
  resource: string;
}

const VERBS: Record<string, string> = { POST: "create", PUT: "update", PATCH: "patch" };

/**
 * The kind of a request, from its method and URL. Paths: /api/v1/… (the core group) or /apis/GROUP/VERSION/…,
 * then `namespaces/NS/` for a namespaced resource, then RESOURCE[/NAME[/SUBRESOURCE]]. The server's URL may have
 * a path of its own in front (a cluster behind a management proxy's /k8s/clusters/ID).
 */
export function requestKindOf(method: string, url: string): ApiRequestKind {
  const { pathname, searchParams } = new URL(url, "http://api-server");
  const parts = pathname.split("/").filter(Boolean);
  const root = parts.findIndex((p) => p === "api" || p === "apis");
  const rest = root < 0 ? [] : parts.slice(root + (parts[root] === "api" ? 2 : 3));
  // `namespaces/NS/RESOURCE…` is a namespaced resource; `namespaces[/NS]` alone is the namespaces themselves.
  const path = rest[0] === "namespaces" && rest.length > 2 ? rest.slice(2) : rest;
  if (path.length === 0) return { verb: "discovery", resource: "" };
  const [resource, name, subresource] = path as [string, string | undefined, string | undefined];
  const upper = method.toUpperCase();
  const verb =
    upper === "GET" ? (searchParams.get("watch") === "true" ? "watch" : name === undefined ? "list" : "get")
    : upper === "DELETE" ? (name === undefined ? "deletecollection" : "delete")
    : (VERBS[upper] ?? upper.toLowerCase());
  return { verb, resource: subresource ? `${resource}/${subresource}` : resource };
}

/**
 * The config, with every request and watch it authenticates told to `count` first. Through the prototype, like
 * sharedConnections: the client calls applySecurityAuthentication once for each request it sends, watches too.
 */
export function countedRequests(kc: KubeConfig, count: (kind: ApiRequestKind) => void): KubeConfig {
  const counted = Object.create(kc) as KubeConfig;
  counted.applySecurityAuthentication = async (context: RequestContext) => {
    count(requestKindOf(context.getHttpMethod(), context.getUrl()));
    await kc.applySecurityAuthentication(context);
  };
  return counted;
}
