// Unit tests for the API server's name and label syntax rules.
import assert from "node:assert/strict";
import {
  dnsLabelProblem,
  dnsSubdomainProblem,
  labelKeyProblem,
  labelValueProblem,
  portNameProblem,
} from "./_k8s_names.ts";

Deno.test("dnsLabelProblem() accepts RFC 1123 labels and refuses dots, capitals and length", () => {
  assert.equal(dnsLabelProblem("kube-system"), undefined);
  assert.equal(dnsLabelProblem("0a"), undefined);
  assert.match(dnsLabelProblem("a.b") ?? "", /RFC 1123 label/);
  assert.match(dnsLabelProblem("Prod") ?? "", /RFC 1123 label/);
  assert.match(dnsLabelProblem("-a") ?? "", /RFC 1123 label/);
  assert.equal(dnsLabelProblem("a".repeat(64)), "must be no more than 63 characters");
});

Deno.test("dnsSubdomainProblem() accepts dotted names up to 253 characters", () => {
  assert.equal(dnsSubdomainProblem("web-0.example"), undefined);
  assert.match(dnsSubdomainProblem("web_0") ?? "", /RFC 1123 subdomain/);
  assert.match(dnsSubdomainProblem("a..b") ?? "", /RFC 1123 subdomain/);
  assert.equal(dnsSubdomainProblem("a".repeat(254)), "must be no more than 253 characters");
});

Deno.test("labelKeyProblem() checks the optional prefix and the name part", () => {
  assert.equal(labelKeyProblem("app"), undefined);
  assert.equal(labelKeyProblem("app.kubernetes.io/name"), undefined);
  assert.equal(labelKeyProblem("My_Key.1"), undefined);
  assert.equal(labelKeyProblem("/name"), "prefix part must not be empty");
  assert.equal(labelKeyProblem("a/"), "name part must not be empty");
  assert.equal(labelKeyProblem(""), "name part must not be empty");
  assert.match(labelKeyProblem("a/b/c") ?? "", /optional DNS subdomain prefix/);
  assert.match(labelKeyProblem("Example.com/x") ?? "", /^prefix part must be a lowercase RFC 1123/);
  assert.match(labelKeyProblem("-app") ?? "", /^name part must consist of alphanumeric/);
  assert.equal(labelKeyProblem("a".repeat(64)), "name part must be no more than 63 characters");
});

Deno.test("labelValueProblem() accepts empty values and the label name syntax", () => {
  assert.equal(labelValueProblem(""), undefined);
  assert.equal(labelValueProblem("v1.2_3-x"), undefined);
  assert.match(labelValueProblem("a b") ?? "", /^must be empty or consist of/);
  assert.match(labelValueProblem("x/y") ?? "", /^must be empty or consist of/);
  assert.equal(labelValueProblem("a".repeat(64)), "must be no more than 63 characters");
});

Deno.test("portNameProblem() enforces IANA_SVC_NAME in lowercase", () => {
  assert.equal(portNameProblem("http"), undefined);
  assert.equal(portNameProblem("serve-80-tcp"), undefined);
  assert.equal(portNameProblem("80"), "must contain at least one letter (a-z)");
  assert.equal(portNameProblem("a--b"), "must not contain consecutive hyphens");
  assert.equal(portNameProblem("-http"), "must not begin or end with a hyphen");
  assert.equal(portNameProblem("http-"), "must not begin or end with a hyphen");
  assert.match(portNameProblem("HTTP") ?? "", /only lowercase alphanumeric/);
  assert.match(portNameProblem("") ?? "", /only lowercase alphanumeric/);
  assert.equal(portNameProblem("a".repeat(16)), "must be no more than 15 characters");
});
