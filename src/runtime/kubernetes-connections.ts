/**
 * One connection pool for all of the runtime's API calls and watches. @kubernetes/client-node (2.0.1) makes a new
 * undici Agent, its own pool, for every request over TLS or with TLS settings (KubeConfig.createDispatcher; only
 * its WebSocket agents are cached): every call opens a connection, with a TLS handshake, that then idles until
 * undici's keep-alive timeout, and every call leaves an Agent, its queues and a socket to collect. At 1,000
 * agents that was hundreds of connections a second (docs/performance.md).
 *
 * The pool is the first request's; the TLS settings it holds (the cluster's CA, a client certificate) are the
 * kubeconfig's, fixed for the process. Credentials sent as headers (bearer tokens, rotated service-account tokens)
 * are still applied to every request by the client. A user with an exec plugin keeps the client's way: a plugin
 * may hand out client certificates that change, which a pool made once would not follow.
 */
import type { KubeConfig, RequestContext } from "@kubernetes/client-node";

export function sharedConnections(kc: KubeConfig): KubeConfig {
  if (kc.getCurrentUser()?.exec) return kc;
  // Everything else is the given config's, through the prototype: only how a request is authenticated differs.
  const shared = Object.create(kc) as KubeConfig;
  let pool: ReturnType<RequestContext["getDispatcher"]>;
  shared.applySecurityAuthentication = async (context: RequestContext) => {
    await kc.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (!made) return;
    // The Agent just made has opened nothing yet: dropped, for the one every request shares.
    pool ??= made;
    context.setDispatcher(pool);
  };
  return shared;
}
