/**
 * Source transforms of @kubernetes/client-node's generated modules (2.x), so that loading the client loads only the
 * API groups Ruriko calls and the models it receives. Pure (text in, text out); kubernetes-client.ts applies them
 * as the modules are loaded. Each returns undefined when the text is not shaped as expected (another version of
 * the generator): the module is then loaded as it is, whole, which is correct, only larger.
 *
 * What they leave out of a load (docs/performance.md): of the ~31 MB of generated JavaScript, the request and
 * response code of the 60-odd API groups other than the kept ones (gen/types/ObservableAPI.js, ObjectParamAPI.js
 * and the gen/apis/ files they import), and the 757 model modules the object serializer imports at once, of
 * which a reconcile of pods and StatefulSets meets a few dozen.
 */

const SOURCE_MAP = /^\/\/# sourceMappingURL=.*$/gm;

/**
 * gen/index.js without the models (models/all.js: every model module) and with only the kept groups' API classes
 * (`Object<Group>Api as <Group>Api`). The client's own modules import from it: config.js createConfiguration and
 * ServerConfiguration, portforward.js CoreV1Api and AppsV1Api.
 */
export function trimIndex(source: string, groups: readonly string[]): string | undefined {
  const models = /^export \* from "\.\/models\/all\.js";\n/m;
  const apis = /^export \{([^}]*)\} from '\.\/types\/ObjectParamAPI\.js';$/m;
  const list = apis.exec(source)?.[1];
  if (!models.test(source) || list === undefined) return undefined;
  const exported = new Set(list.split(",").map((s) => s.trim()));
  const kept = groups.map((g) => `Object${g}Api as ${g}Api`);
  if (!kept.every((k) => exported.has(k))) return undefined;
  return source.replace(models, "").replace(apis, `export { ${kept.join(", ")} } from './types/ObjectParamAPI.js';`).replace(SOURCE_MAP, "");
}

/**
 * A generated file of one section per API group (gen/types/ObservableAPI.js, ObjectParamAPI.js), each section an
 * import line naming its group and the group's class, kept for the given groups only (with the file's own imports
 * before the first section). `section` matches a section's import line; its first group is the group's name.
 */
function keepSections(source: string, section: RegExp, classOf: (group: string) => string, groups: readonly string[]): string | undefined {
  const lines = source.split("\n");
  const kept: string[] = [];
  const found = new Set<string>();
  let keeping = true;
  for (const line of lines) {
    const group = section.exec(line)?.[1];
    if (group !== undefined) {
      keeping = groups.includes(group);
      if (keeping) found.add(group);
    }
    if (keeping) kept.push(line);
  }
  const text = kept.join("\n").replace(SOURCE_MAP, "");
  // Every kept group's section, with its class: else this is not the layout expected.
  if (!groups.every((g) => found.has(g) && text.includes(`export class ${classOf(g)} `))) return undefined;
  return text;
}

/** gen/types/ObservableAPI.js: the kept groups' Observable classes, importing only their gen/apis/ files. */
export function trimObservableApi(source: string, groups: readonly string[]): string | undefined {
  return keepSections(source, /^import \{ (\w+)ApiRequestFactory, \w+ApiResponseProcessor \} from "\.\.\/apis\/\w+Api\.js";$/, (g) => `Observable${g}Api`, groups);
}

/** gen/types/ObjectParamAPI.js: the kept groups' Object classes (what gen/index.js exports as <Group>Api). */
export function trimObjectParamApi(source: string, groups: readonly string[]): string | undefined {
  return keepSections(source, /^import \{ Observable(\w+)Api \} from "\.\/ObservableAPI\.js";$/, (g) => `Object${g}Api`, groups);
}

/**
 * gen/models/ObjectSerializer.js with its models loaded when first met instead of all at its own load: the type
 * map (model name → class), which the serializer reads by name for every object it (de)serializes, requires a
 * model module the first time its name is asked for. The model modules import nothing, so
 * each loads synchronously (require of an ES module). The serializer's re-exports of every model go: the client's
 * modules import only ObjectSerializer from it (gen/index.js exports the models through models/all.js).
 */
export function lazyModels(source: string): string | undefined {
  const reexport = /^export \* from '\.\.\/models\/\w+\.js';\n/gm;
  const imported = /^import \{ (\w+) \} from '\.\.\/models\/(\w+)\.js';\n/gm;
  const typeMap = /^let typeMap = \{\n((?: {4}"\w+": \w+,\n)*)\};$/m;
  const paths = new Map<string, string>();
  for (const [, name, file] of source.matchAll(imported)) paths.set(name!, `./${file}.js`);
  const entries = typeMap.exec(source)?.[1];
  if (paths.size === 0 || entries === undefined) return undefined;
  const models: Record<string, [string, string]> = {};
  for (const [, key, name] of entries.matchAll(/^ {4}"(\w+)": (\w+),$/gm)) {
    const path = paths.get(name!);
    if (!path) return undefined;
    models[key!] = [path, name!];
  }
  const stripped = source.replace(reexport, "").replace(imported, "");
  // The models must be named nowhere else: anything else still naming one would now be an undefined binding.
  for (const [word] of stripped.replace(typeMap, "").matchAll(/\b\w+\b/g)) if (paths.has(word)) return undefined;
  // Each entry a getter that loads its model and then replaces itself with it: a plain property from then on.
  const lazy = [
    "const requireModel = createRequire(import.meta.url);",
    "let typeMap = {};",
    `for (const [key, [file, name]] of Object.entries(${JSON.stringify(models)})) {`,
    "    Object.defineProperty(typeMap, key, { configurable: true, enumerable: true, get() {",
    "        const type = requireModel(file)[name];",
    "        Object.defineProperty(typeMap, key, { value: type, enumerable: true });",
    "        return type;",
    "    } });",
    "}",
  ].join("\n");
  return `import { createRequire } from "node:module";\n${stripped.replace(typeMap, lazy).replace(SOURCE_MAP, "")}`;
}
