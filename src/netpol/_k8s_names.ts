// The API server's name and label syntax (k8s.io/apimachinery pkg/api/validate/content and
// pkg/util/validation): DNS-1123 labels and subdomains, label keys and values, IANA_SVC_NAME
// port names. Each check returns why a value is invalid, or undefined.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const SUBDOMAIN_RULE = "must be a lowercase RFC 1123 subdomain (lowercase alphanumeric " +
  "characters, '-' or '.', starting and ending with an alphanumeric character)";
const LABEL_RULE = "must be a lowercase RFC 1123 label (lowercase alphanumeric characters " +
  "or '-', starting and ending with an alphanumeric character)";
const LABEL_NAME_RULE = "consist of alphanumeric characters, '-', '_' or '.', " +
  "starting and ending with an alphanumeric character";

/** A DNS-1123 label: namespace names. */
export function dnsLabelProblem(value: string): string | undefined {
  if (value.length > 63) return "must be no more than 63 characters";
  if (!DNS1123_LABEL.test(value)) return LABEL_RULE;
  return undefined;
}

/** A DNS-1123 subdomain: Pod and NetworkPolicy names, label key prefixes. */
export function dnsSubdomainProblem(value: string): string | undefined {
  if (value.length > 253) return "must be no more than 253 characters";
  if (!DNS1123_SUBDOMAIN.test(value)) return SUBDOMAIN_RULE;
  return undefined;
}

/** A label key (a "qualified name"): an optional DNS subdomain prefix and '/', then a name. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length > 2) {
    return "must be a name with an optional DNS subdomain prefix and '/' (e.g. 'example.com/name')";
  }
  const name = parts.length === 2 ? parts[1] ?? "" : key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    if (prefix === "") return "prefix part must not be empty";
    const why = dnsSubdomainProblem(prefix);
    if (why !== undefined) return `prefix part ${why}`;
  }
  if (name === "") return "name part must not be empty";
  if (name.length > 63) return "name part must be no more than 63 characters";
  if (!LABEL_NAME.test(name)) return `name part must ${LABEL_NAME_RULE}`;
  return undefined;
}

/** A label value: empty, or up to 63 characters of the label name syntax. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return "must be no more than 63 characters";
  if (value !== "" && !LABEL_NAME.test(value)) return `must be empty or ${LABEL_NAME_RULE}`;
  return undefined;
}

/** An IANA_SVC_NAME (RFC 6335), lowercase only as Kubernetes requires: named ports. */
export function portNameProblem(name: string): string | undefined {
  if (name.length > 15) return "must be no more than 15 characters";
  if (!/^[-a-z0-9]+$/.test(name)) {
    return "must contain only lowercase alphanumeric characters (a-z, 0-9) and hyphens (-)";
  }
  if (!/[a-z]/.test(name)) return "must contain at least one letter (a-z)";
  if (name.includes("--")) return "must not contain consecutive hyphens";
  if (name.startsWith("-") || name.endsWith("-")) return "must not begin or end with a hyphen";
  return undefined;
}
