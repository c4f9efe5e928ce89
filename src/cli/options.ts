/**
 * The options of `serve` and `bootstrap`, each with its environment variable (docs/configuration.md). Kept apart
 * from ruriko.ts so that the tests parse the very options the command has, and check the documentation's table
 * against them.
 */
import { InvalidArgumentError, Option } from "commander";
import { DEFAULT_AGENT_NETWORK, parseAgentNetwork } from "../controller/agent-network.ts";
import type { AgentNetworkMode } from "../runtime/runtime.ts";
import { listArgument } from "./environment.ts";

export const DEFAULT_STATE_DIR = ".ruriko";

export const stateDirOption = () => new Option("--state-dir <dir>", "state directory (SQLite database, git checkout)").env("RURIKO_STATE_DIR").default(DEFAULT_STATE_DIR);

const wholeNumber = (min: number) => (text: string) => {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
  return n;
};

const seconds = (text: string) => {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number of seconds above 0");
  return n;
};

const agentNetwork = (text: string): AgentNetworkMode => {
  const parsed = parseAgentNetwork(text);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.problem);
  return parsed.value;
};

/**
 * Every option of `serve`. All but `--adopt-orphans` have a variable: adopting is a one-off decision after a
 * database was lost, and a variable left set in a compose file would take over the next lost database silently
 * instead of refusing to start (docs/operations.md#adopting-a-lost-instance).
 */
export function serveOptions(): Option[] {
  return [
    new Option("--manifests <dir>", "watch a manifest directory").env("RURIKO_MANIFESTS"),
    new Option("--git <url>", "follow a git repository (URL, local path or file:// URL)").env("RURIKO_GIT"),
    new Option("--branch <branch>", "git branch to follow").env("RURIKO_GIT_BRANCH").default("main"),
    new Option("--path <path>", "sub-path of the repository holding the manifests").env("RURIKO_GIT_PATH").default("."),
    stateDirOption(),
    new Option("--http <host:port>", "HTTP listen address (health, metrics, status, webhook)").env("RURIKO_HTTP").default("127.0.0.1:8484"),
    new Option("--concurrency <n>", "agents reconciled at once").env("RURIKO_CONCURRENCY").argParser(wholeNumber(1)).default(4),
    new Option("--resync <seconds>", "look at every agent this often even without events").env("RURIKO_RESYNC").argParser(seconds).default(300),
    new Option("--git-interval <seconds>", "git fetch interval").env("RURIKO_GIT_INTERVAL").argParser(seconds).default(60),
    new Option("--agent-poll <seconds>", "ask each running agent how its parts are doing this often (a Degraded agent is seen within it)").env("RURIKO_AGENT_POLL").argParser(seconds).default(30),
    new Option("--image-pull-timeout <seconds>", "give up an image pull that has not finished after this long (it fails as ImagePullFailed: timeout and is retried with backoff)").env("RURIKO_IMAGE_PULL_TIMEOUT").argParser(seconds).default(600),
    new Option("--allow-empty", "allow a revision with no agents to prune every agent").env("RURIKO_ALLOW_EMPTY").default(false),
    new Option("--log-level <level>", "log level").env("RURIKO_LOG_LEVEL").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    new Option("--master-key-file <file>", "master key file (default: RURIKO_MASTER_KEY, else <state-dir>/master.key, generated on first start)").env("RURIKO_MASTER_KEY_FILE"),
    new Option("--matrix-homeserver <url>", "Matrix homeserver for the status room (token: RURIKO_MATRIX_ACCESS_TOKEN[_FILE] or secret matrix-access-token)").env("RURIKO_MATRIX_HOMESERVER"),
    new Option("--matrix-user <userId>", "Ruriko's Matrix user id, e.g. @ruriko:example.org").env("RURIKO_MATRIX_USER"),
    new Option("--status-room <room>", "room (id or alias) that hears what Ruriko does").env("RURIKO_STATUS_ROOM"),
    new Option("--matrix-operators <userIds>", "comma-separated Matrix users who may ask /ruriko queries (approvers in policies may too)").env("RURIKO_MATRIX_OPERATORS").argParser(listArgument),
    new Option(
      "--agent-matrix-homeserver <url>",
      "the homeserver URL as agents reach it from their containers (default: --matrix-homeserver); provisioning accounts needs RURIKO_MATRIX_REGISTRATION_SECRET[_FILE] or secret matrix-registration-secret",
    ).env("RURIKO_AGENT_MATRIX_HOMESERVER"),
    new Option(
      "--agent-network <mode>",
      "how agent containers are networked: bridge (the instance's network, ACP published on 127.0.0.1), host (the host's network namespace, each agent on its own 127.0.0.1 port) or network:NAME (a Docker network Ruriko is attached to, ACP reached by container name)",
    )
      .env("RURIKO_AGENT_NETWORK")
      .argParser(agentNetwork)
      .default(DEFAULT_AGENT_NETWORK),
    new Option("--runtime <engine>", "where agents run: docker (this host's engine) or kubernetes (a cluster; see docs/kubernetes.md)").env("RURIKO_RUNTIME").choices(["docker", "kubernetes"]).default("docker"),
    new Option("--kubeconfig <file>", "kubernetes: the kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else the pod's in-cluster credentials)").env("RURIKO_KUBECONFIG"),
    new Option("--kube-namespace <namespace>", "kubernetes: the namespace agents run in (default: the pod's own namespace in a cluster, else the kubeconfig context's, else default)").env("RURIKO_KUBE_NAMESPACE"),
    new Option("--kube-storage-class <class>", "kubernetes: StorageClass of the agents' data volumes (default: the cluster's default class)").env("RURIKO_KUBE_STORAGE_CLASS"),
    new Option("--kube-volume-size <quantity>", "kubernetes: size of each agent's data volume").env("RURIKO_KUBE_VOLUME_SIZE").default("1Gi"),
    new Option("--kube-acp-access <mode>", "kubernetes: how Ruriko reaches agents' ACP: pod-ip (in the cluster, or a host routing to pods) or port-forward (through the API server)")
      .env("RURIKO_KUBE_ACP_ACCESS")
      .choices(["pod-ip", "port-forward"])
      .default("pod-ip"),
    new Option("--adopt-orphans", "the state database was lost: take over the containers of the instance recorded in the state directory instead of refusing to start (see docs/operations.md)").default(false),
  ];
}

/** Every option of `bootstrap`; its secrets (the registration secret, a token to reuse) come from the environment only. */
export function bootstrapOptions(): Option[] {
  return [
    new Option("--matrix-homeserver <url>", "the homeserver, as this command reaches it (Synapse with registration_shared_secret)").env("RURIKO_MATRIX_HOMESERVER").makeOptionMandatory(),
    new Option("--matrix-user <user>", "Ruriko's account: a localpart or a full user id").env("RURIKO_MATRIX_USER").default("ruriko"),
    new Option("--operator <userIds>", "comma-separated Matrix users invited to both rooms").env("RURIKO_OPERATOR").argParser(listArgument).makeOptionMandatory(),
    new Option("--token-file <file>", "write the access token here (mode 0600), and reuse the token it holds on the next run; without it the token is printed").env("RURIKO_MATRIX_ACCESS_TOKEN_FILE"),
    new Option("--status-alias <localpart>", "alias of the status room, #LOCALPART:SERVER").env("RURIKO_STATUS_ROOM_ALIAS").default("ruriko-status"),
    new Option("--approvals-alias <localpart>", "alias of the approval room, #LOCALPART:SERVER").env("RURIKO_APPROVAL_ROOM_ALIAS").default("ruriko-approvals"),
  ];
}
