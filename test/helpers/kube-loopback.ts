/**
 * A kubeconfig's options for a stand-in API server on loopback (plain HTTP): `skipTLSVerify` is a TLS setting, so
 * the client makes a dispatcher per request for it, as it does against a real cluster.
 */
export function loopbackKubeConfigOptions(port: number, token: string) {
  return {
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  };
}
