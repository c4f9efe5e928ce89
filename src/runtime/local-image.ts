/**
 * Builds a container image on a machine that cannot reach any registry: the root filesystem is assembled
 * from the running Node binary and the shared libraries it links against (as `ldd` reports them), plus the
 * files the caller gives, and built `FROM scratch` (which needs no pull). A digest of every input is kept
 * in a label, so an unchanged image is reused instead of rebuilt.
 */
import type Docker from "dockerode";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { pack } from "tar-stream";

export interface ImageFile {
  /** Absolute path inside the image. */
  path: string;
  /** A host file to copy… */
  source?: string;
  /** …or the content itself. */
  content?: string | Buffer;
  mode?: number;
}

export interface LocalNodeImageOptions {
  tag: string;
  files?: ImageFile[];
  entrypoint: string[];
  env?: string[];
  labels?: Record<string, string>;
  /** Default 65532:65532 (non-root). */
  user?: string;
  workdir?: string;
  exposedPorts?: string[];
}

export const INPUTS_LABEL = "ruriko.dev/image-inputs";
const NODE_PATH = "/usr/local/bin/node";
const APP_UID = 65532;

/** The dynamic loader and every library `ldd` lists for a binary. */
function sharedLibrariesOf(binary: string): string[] {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match) libs.push(match[1]!);
  }
  return libs;
}

interface Entry {
  path: string;
  data?: Buffer;
  mode: number;
  uid?: number;
  type: "file" | "directory";
}

function rootFilesystem(opts: LocalNodeImageOptions): Entry[] {
  const entries: Entry[] = [
    { path: "/tmp", mode: 0o1777, type: "directory" },
    { path: "/data", mode: 0o755, uid: APP_UID, type: "directory" },
    { path: "/etc/passwd", data: Buffer.from(`root:x:0:0:root:/root:/sbin/nologin\nruriko:x:${APP_UID}:${APP_UID}:ruriko:/data:/sbin/nologin\n`), mode: 0o644, type: "file" },
    { path: "/etc/group", data: Buffer.from(`root:x:0:\nruriko:x:${APP_UID}:\n`), mode: 0o644, type: "file" },
    { path: NODE_PATH, data: readFileSync(process.execPath), mode: 0o755, type: "file" },
  ];
  for (const lib of sharedLibrariesOf(process.execPath)) {
    entries.push({ path: lib, data: readFileSync(realpathSync(lib)), mode: 0o755, type: "file" });
  }
  for (const file of opts.files ?? []) {
    const data = file.source !== undefined ? readFileSync(file.source) : Buffer.from(file.content ?? "");
    const mode = file.mode ?? (file.source !== undefined ? statSync(file.source).mode & 0o777 : 0o644);
    entries.push({ path: file.path, data, mode, type: "file" });
  }
  return entries;
}

function dockerfile(opts: LocalNodeImageOptions): string {
  // ADD of a local tar keeps the archive's owners (COPY would make everything root's): /data must be the app user's.
  const lines = ["FROM scratch", "ADD rootfs.tar /", `USER ${opts.user ?? `${APP_UID}:${APP_UID}`}`];
  if (opts.workdir) lines.push(`WORKDIR ${opts.workdir}`);
  for (const env of opts.env ?? []) lines.push(`ENV ${env.replace("=", "=\"")}"`);
  for (const port of opts.exposedPorts ?? []) lines.push(`EXPOSE ${port}`);
  lines.push(`ENTRYPOINT ${JSON.stringify(opts.entrypoint)}`);
  return lines.join("\n") + "\n";
}

export async function buildLocalNodeImage(docker: Docker, opts: LocalNodeImageOptions): Promise<{ tag: string; id: string; reused: boolean }> {
  const entries = rootFilesystem(opts);
  const file = dockerfile(opts);
  const hash = createHash("sha256").update(file).update(JSON.stringify(opts.labels ?? {}));
  for (const e of [...entries].sort((a, b) => a.path.localeCompare(b.path))) {
    hash.update(`${e.path}\0${e.mode}\0${e.uid ?? 0}\0`);
    if (e.data) hash.update(e.data);
  }
  const inputs = hash.digest("hex");

  const existing = await docker.getImage(opts.tag).inspect().catch(() => undefined);
  if (existing?.Config?.Labels?.[INPUTS_LABEL] === inputs) return { tag: opts.tag, id: existing.Id, reused: true };

  const rootfs = pack();
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  for (const dir of [...dirs].sort()) if (!entries.some((e) => e.type === "directory" && e.path === `/${dir}`)) rootfs.entry({ name: `${dir}/`, type: "directory", mode: 0o755 });
  for (const e of entries) {
    const name = e.path.slice(1);
    if (e.type === "directory") rootfs.entry({ name: `${name}/`, type: "directory", mode: e.mode, uid: e.uid ?? 0, gid: e.uid ?? 0 });
    else rootfs.entry({ name, mode: e.mode, uid: e.uid ?? 0, gid: e.uid ?? 0 }, e.data!);
  }
  rootfs.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of rootfs) chunks.push(chunk as Buffer);

  const tar = pack();
  tar.entry({ name: "Dockerfile", mode: 0o644 }, file);
  tar.entry({ name: "rootfs.tar", mode: 0o644 }, Buffer.concat(chunks));
  tar.finalize();

  const stream: NodeJS.ReadableStream = await docker.buildImage(tar as unknown as NodeJS.ReadableStream, {
    t: opts.tag,
    labels: { ...opts.labels, [INPUTS_LABEL]: inputs },
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        const failed = output?.find((o) => o.error || o.errorDetail);
        if (err) reject(new Error(`building ${opts.tag}: ${err.message}`));
        else if (failed) reject(new Error(`building ${opts.tag}: ${failed.errorDetail?.message ?? failed.error}`));
        else resolve();
      },
    );
  });
  const built = await docker.getImage(opts.tag).inspect();
  return { tag: opts.tag, id: built.Id, reused: false };
}
