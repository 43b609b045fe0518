// The NetworkPolicy engine: Kubernetes objects in (parse), a model of them (model_build), and
// the verdict of a flow (evaluate). Pure: no I/O anywhere in src/netpol/.
export * from "./model.ts";
export { FlowError, ObjectError, type ObjectWhere } from "./errors.ts";
export {
  API_VERSIONS,
  type OtherObject,
  type ParsedItem,
  type ParsedObject,
  parseDocument,
  parseItems,
  parseNamespace,
  parseNetworkPolicy,
  parseNode,
  parseObject,
  parsePod,
} from "./parse.ts";
export { checkNodes, type NodeCheck } from "./node_check.ts";
export { describeIpBlock } from "./parse_ipblock.ts";
export {
  applyObject,
  buildModel,
  deleteObject,
  emptyModel,
  namespaceOf,
  type ObjectRef,
} from "./model_build.ts";
export { indexModel, type ModelIndex, type PolicyEntry } from "./model_index.ts";
export { isEmptySelector, matches } from "./selector.ts";
export { evaluate, inBlock, portMatches } from "./evaluate.ts";
export {
  compile,
  CompileCache,
  type Compiled,
  type CompiledRule,
  ruleKeyId,
  type RuleSource,
} from "./compile.ts";
export { IdentityAllocator, labelSetKey } from "./identity_alloc.ts";
export { simulate, type SimVerdict } from "./simulate.ts";
