import pkg from "../package.json" with { type: "json" };

export const RURIKO_VERSION: string = pkg.version;
