export { check, LANGUAGE_VERSION, TEMPLATE_NAMES, type CheckOptions, type CheckResult } from "./check.js";
export type * from "./spec.js";
export * as schemas from "./schemas.js";
