// libtwofa through koffi. The declarations come from the C header, include/twofa.h, read at
// load time: its typedefs become koffi types, its prototypes koffi functions and its integer
// #defines the constants, so nothing is copied by hand. One convention is added: parameters
// named `out`, `out_*` and `err` are out-parameters.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import koffi from "koffi";

const PACKAGE = dirname(dirname(fileURLToPath(import.meta.url)));
const REPO = join(PACKAGE, "..", "..");

/** The first of `candidates` that exists (the environment variable's value is taken as is). */
function locate(variable, candidates, what) {
  if (process.env[variable]) return process.env[variable];
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`twofa: ${what} not found (looked in ${candidates.join(", ")}); set ${variable} or run make`);
  }
  return found;
}

const libraryPath = locate(
  "TWOFA_LIB",
  [join(PACKAGE, "native", "libtwofa.so"), join(REPO, "target", "release", "libtwofa.so")],
  "libtwofa.so",
);
const headerPath = locate(
  "TWOFA_HEADER",
  [join(PACKAGE, "native", "twofa.h"), join(REPO, "include", "twofa.h")],
  "twofa.h",
);

/** The header without comments and without the C++ guard block. */
function declarations(header) {
  return header
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/[^\n]*/g, "")
    .replace(/#ifdef __cplusplus[\s\S]*?#endif/g, "");
}

/** Marks the out-parameters of a prototype for koffi. Returned strings (`char **`) stay raw
 * pointers, so that they can be freed with `twofa_string_free` once read. */
function annotate(prototype) {
  return prototype.replace(/([(,]\s*)([^,()]*\*\s*\*?\s*(?:out|out_\w+|err))(?=\s*[,)])/g, (_, before, param) =>
    `${before}_Out_ ${param.replace(/^\s*char\s*\*\*/, "void **")}`,
  );
}

const text = declarations(readFileSync(headerPath, "utf8"));

/** The header's integer constants, by name (`TWOFA_INVALID_CODE` → 2). */
export const constants = Object.fromEntries(
  [...text.matchAll(/^#define\s+(\w+)\s+(-?\d+)\s*$/gm)].map(([, name, value]) => [name, Number(value)]),
);

for (const [, type, alias] of text.matchAll(/typedef\s+(u?int\d+_t)\s+(\w+);/g)) koffi.alias(alias, type);
for (const [, name] of text.matchAll(/typedef\s+struct\s+(\w+)\s+\1;/g)) koffi.opaque(name);
for (const [, ret, name, params] of text.matchAll(/typedef\s+([\w\s*]+?)\s*\(\*(\w+)\)\s*\(([^)]*)\);/g)) {
  koffi.proto(`${ret} ${name}(${params})`);
}
for (const [, body, name] of text.matchAll(/typedef\s+struct\s*\{([^}]*)\}\s*(\w+);/g)) {
  const fields = {};
  for (const [, type, field] of body.matchAll(/([\w\s*]+?)\s*\b(\w+);/g)) {
    fields[field] = type.trim().replace(/\s*\*/g, " *").replace(/^(\w+)_fn$/, "$1_fn *");
  }
  koffi.struct(name, fields);
}

const library = koffi.load(libraryPath);

/** Every function of the header, by name. */
export const lib = Object.fromEntries(
  [...text.matchAll(/^([\w][\w\s*]*?\b\w+\s*\([^;]*\));/gm)]
    .map(([, prototype]) => prototype.replace(/\s+/g, " "))
    .filter((prototype) => !prototype.startsWith("typedef"))
    .map((prototype) => [prototype.match(/(\w+)\s*\(/)[1], library.func(annotate(prototype))]),
);

/** The C string at `pointer` (a `char *` the library returned), freed afterwards. */
export function takeString(pointer) {
  try {
    return koffi.decode(pointer, "char", -1);
  } finally {
    lib.twofa_string_free(pointer);
  }
}

export { koffi };
