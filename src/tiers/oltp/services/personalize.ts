// Campaign personalisation, pure: merge variables from the lead ({{firstName}}, {{custom.x}}, fallbacks), HTML-escaped in HTML parts, and the A/B variant a lead gets.
import type { StepVariant } from "../schema";

/** What a template may name: the lead's own fields and its custom fields. */
export interface LeadVariables {
  email: string;
  firstName: string | null;
  lastName: string | null;
  company: string | null;
  customFields: Record<string, string | number | boolean | null>;
}

/** `{{ name }}` or `{{ name | "fallback" }}`; a name is a field or `custom.<key>`. */
const mergeTag = /\{\{\s*([A-Za-z_][\w]*(?:\.[\w-]+)?)\s*(?:\|\s*"((?:[^"\\]|\\.)*)"\s*)?\}\}/g;

const fields: Record<string, (lead: LeadVariables) => unknown> = {
  email: (lead) => lead.email,
  firstName: (lead) => lead.firstName,
  lastName: (lead) => lead.lastName,
  company: (lead) => lead.company,
};

function variableValue(lead: LeadVariables, name: string): string | undefined {
  const raw = name.startsWith("custom.") ? lead.customFields[name.slice("custom.".length)] : fields[name]?.(lead);
  if (raw === null || raw === undefined) return undefined;
  const text = String(raw).trim();
  return text === "" ? undefined : text;
}

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => escapes[c]!);

/** The template filled for the lead, or the first variable it lacks that has no fallback. */
export function fillTemplate(template: string, lead: LeadVariables, html: boolean): { value: string } | { missing: string } {
  let missing: string | undefined;
  const value = template.replace(mergeTag, (_tag, name: string, fallback: string | undefined) => {
    const found = variableValue(lead, name) ?? (fallback === undefined ? undefined : fallback.replace(/\\(.)/g, "$1"));
    if (found === undefined) {
      missing ??= name;
      return "";
    }
    return html ? escapeHtml(found) : found;
  });
  return missing === undefined ? { value } : { missing };
}

export interface RenderedStep {
  variant: string;
  subject: string;
  text: string;
  html: string;
  /** The variant's template, offered to the content tier as the body's compression dictionary. */
  template: string;
}

export type RenderOutcome = { rendered: RenderedStep } | { skipped: string };

/** A variant's own subject template; blank means the step follows up under the thread's subject. */
const subjectTemplate = (variant: StepVariant) => (variant.subject.trim() ? variant.subject : "");

/** The filled subject, or for a follow-up without one "Re: " and the thread's subject (once); empty when neither. */
const subjectOrReply = (filled: string, threadSubject: string | null) =>
  filled || (threadSubject ? `Re: ${threadSubject.replace(/^(re:\s*)+/i, "")}` : "");

/**
 * Renders a step's variant for a lead. A follow-up with no subject of its own is "Re: " and the
 * thread's subject. A variable the lead lacks, with no fallback, skips the lead with that reason.
 */
export function renderStep(variant: StepVariant, lead: LeadVariables, threadSubject: string | null): RenderOutcome {
  const parts = [
    ["subject", subjectTemplate(variant), false],
    ["text", variant.text ?? "", false],
    ["html", variant.html ?? "", true],
  ] as const;
  const out: Record<string, string> = {};
  for (const [name, template, html] of parts) {
    const filled = fillTemplate(template, lead, html);
    if ("missing" in filled) return { skipped: `missing_variable:${filled.missing}` };
    out[name] = filled.value;
  }
  const subject = subjectOrReply(out.subject!, threadSubject);
  if (!subject) return { skipped: "missing_subject" };
  return {
    rendered: {
      variant: variant.label,
      subject,
      text: out.text!,
      html: out.html!,
      template: [variant.html ?? "", variant.text ?? ""].filter(Boolean).join("\n"),
    },
  };
}

/** The names a template needs with no fallback, in order of appearance; cached per template (a campaign's few). */
const requiredCache = new Map<string, string[]>();
function requiredVariables(template: string): string[] {
  let names = requiredCache.get(template);
  if (!names) {
    names = [...template.matchAll(mergeTag)].filter((m) => m[2] === undefined).map((m) => m[1]!);
    if (requiredCache.size >= 1000) requiredCache.clear();
    requiredCache.set(template, names);
  }
  return names;
}

/**
 * What renderStep would decide, without rendering the body: the subject, or the same reason to skip (the first
 * variable the lead lacks, in the order renderStep meets them). The sequencer decides with this; SEND_EMAIL renders.
 */
export function decideStep(variant: StepVariant, lead: LeadVariables, threadSubject: string | null): { subject: string; variant: string } | { skipped: string } {
  const filled = fillTemplate(subjectTemplate(variant), lead, false);
  if ("missing" in filled) return { skipped: `missing_variable:${filled.missing}` };
  for (const template of [variant.text ?? "", variant.html ?? ""]) {
    for (const name of requiredVariables(template)) {
      if (variableValue(lead, name) === undefined) return { skipped: `missing_variable:${name}` };
    }
  }
  const subject = subjectOrReply(filled.value, threadSubject);
  if (!subject) return { skipped: "missing_subject" };
  return { subject, variant: variant.label };
}

/** FNV-1a: a stable 32-bit hash, so a lead gets the same variant on every tick and every machine. */
function fnv1a(input: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) {
    hash ^= input.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The variant a lead gets for a step: deterministic per (lead, step), in proportion to the weights. */
export function variantFor<V extends { weight: number }>(variants: readonly V[], leadId: string, stepKey: string): V {
  const total = variants.reduce((sum, v) => sum + Math.max(1, v.weight), 0);
  let point = fnv1a(`${leadId}:${stepKey}`) % total;
  for (const variant of variants) {
    point -= Math.max(1, variant.weight);
    if (point < 0) return variant;
  }
  return variants[variants.length - 1]!;
}
