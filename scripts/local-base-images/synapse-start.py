#!/usr/local/bin/python
# Local stand-in for matrixdotorg/synapse's /start.py: same modes (generate | run) and environment
# (SYNAPSE_SERVER_NAME, SYNAPSE_REPORT_STATS, SYNAPSE_CONFIG_DIR/_PATH, SYNAPSE_DATA_DIR, UID/GID),
# drops root to 991:991 like the official image does (with os.setuid instead of gosu).
import os, subprocess, sys
env = os.environ
mode = sys.argv[1] if len(sys.argv) > 1 else "run"
config_dir = env.get("SYNAPSE_CONFIG_DIR", "/data")
config_path = env.get("SYNAPSE_CONFIG_PATH", config_dir + "/homeserver.yaml")
data_dir = env.get("SYNAPSE_DATA_DIR", "/data")
uid = int(env.get("UID", "991")); gid = int(env.get("GID", "991"))
LOG_CONFIG = """version: 1
formatters:
  precise: {format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'}
filters:
  context: {(): synapse.logging.context.LoggingContextFilter, request: ""}
handlers:
  console: {class: logging.StreamHandler, formatter: precise, filters: [context]}
loggers:
  synapse.storage.SQL: {level: INFO}
root: {level: INFO, handlers: [console]}
disable_existing_loggers: false
"""
def drop():
    if os.getuid() == 0:
        os.chown(data_dir, uid, gid)
        os.setgroups([]); os.setgid(gid); os.setuid(uid)
if mode == "generate":
    for v in ("SYNAPSE_SERVER_NAME", "SYNAPSE_REPORT_STATS"):
        if v not in env: sys.exit(f"Environment variable '{v}' is mandatory in `generate` mode.")
    log_config = f"{config_dir}/{env['SYNAPSE_SERVER_NAME']}.log.config"
    if not os.path.exists(log_config):  # console logging, as the official template does
        open(log_config, "w").write(LOG_CONFIG)
    drop()
    sys.exit(subprocess.run([sys.executable, "-m", "synapse.app.homeserver", "--server-name", env["SYNAPSE_SERVER_NAME"],
        "--report-stats", env["SYNAPSE_REPORT_STATS"], "--config-path", config_path, "--config-directory", config_dir,
        "--data-directory", data_dir, "--generate-config", "--open-private-ports"]).returncode)
if mode != "run": sys.exit(f"Unknown execution mode '{mode}'")
args = sys.argv[2:]
if "-m" not in args: args = ["-m", env.get("SYNAPSE_WORKER", "synapse.app.homeserver")] + args
if not any(a.startswith(("--config-path", "-c")) for a in args):
    if not os.path.exists(config_path): sys.exit(f"Config file '{config_path}' does not exist. Run with `generate` first.")
    args += ["--config-path", config_path]
print("Starting synapse with args " + " ".join(args), flush=True)
drop()
os.execv(sys.executable, [sys.executable] + args)
