import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideStep, fillTemplate, renderStep, variantFor, type LeadVariables } from "../../src/tiers/oltp/services/personalize";

const lead = (fields: Partial<LeadVariables> = {}): LeadVariables => ({
  email: "ann@acme.example",
  firstName: "Ann",
  lastName: "Okafor",
  company: "Acme",
  customFields: { role: "CTO", seats: 12 },
  ...fields,
});

describe("campaign personalisation", () => {
  it("fills fields, custom fields and fallbacks", () => {
    expect(fillTemplate('Hi {{firstName}} of {{ company }}, {{custom.role}} of {{custom.seats}} ({{custom.team | "the team"}})', lead(), false)).toEqual({
      value: "Hi Ann of Acme, CTO of 12 (the team)",
    });
    expect(fillTemplate('Hi {{firstName | "there"}}', lead({ firstName: null }), false)).toEqual({ value: "Hi there" });
    expect(fillTemplate('Hi {{firstName | "there"}}', lead({ firstName: "  " }), false)).toEqual({ value: "Hi there" });
  });

  it("a variable the lead lacks, with no fallback, is reported instead of sent as a tag", () => {
    expect(fillTemplate("Hi {{firstName}}", lead({ firstName: null }), false)).toEqual({ missing: "firstName" });
    expect(renderStep({ label: "A", subject: "Hi {{custom.city}}", text: "x", weight: 1 }, lead(), null)).toEqual({ skipped: "missing_variable:custom.city" });
  });

  it("HTML parts escape values; text parts and subjects keep them as they are", () => {
    const outcome = renderStep({ label: "A", subject: "For {{company}}", text: "{{company}}", html: "<p>{{company}}</p>", weight: 1 }, lead({ company: `<script>"x"&'y'</script>` }), null);
    expect(outcome).toMatchObject({
      rendered: { subject: `For <script>"x"&'y'</script>`, text: `<script>"x"&'y'</script>`, html: "<p>&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;</p>" },
    });
  });

  it("a follow-up without its own subject is Re: the thread's, once", () => {
    expect(renderStep({ label: "A", subject: "", text: "Bump", weight: 1 }, lead(), "Re: Hello Ann")).toMatchObject({ rendered: { subject: "Re: Hello Ann" } });
    expect(renderStep({ label: "A", subject: "", text: "Bump", weight: 1 }, lead(), "Hello Ann")).toMatchObject({ rendered: { subject: "Re: Hello Ann" } });
    expect(renderStep({ label: "A", subject: "New news", text: "Bump", weight: 1 }, lead(), "Hello Ann")).toMatchObject({ rendered: { subject: "New news" } });
  });

  it("assigns variants deterministically per lead and step, in proportion to their weights", () => {
    const variants = [{ label: "A", weight: 1 }, { label: "B", weight: 3 }];
    const ids = Array.from({ length: 4000 }, (_, i) => `00000000-0000-4000-8000-${i.toString().padStart(12, "0")}`);
    const picks = ids.map((id) => variantFor(variants, id, "campaign:0").label);
    expect(ids.map((id) => variantFor(variants, id, "campaign:0").label)).toEqual(picks);
    const b = picks.filter((p) => p === "B").length / picks.length;
    expect(b).toBeGreaterThan(0.7);
    expect(b).toBeLessThan(0.8);
  });

  it("property: the sequencer's decision (decideStep) is renderStep's, without the body: the same subject or the same reason to skip", () => {
    const names = ["firstName", "lastName", "company", "email", "custom.role", "custom.team"];
    const tag = fc.record({ name: fc.constantFrom(...names), fallback: fc.option(fc.constantFrom("", "there", 'a \\"b\\"'), { nil: undefined }) });
    const template = fc.array(fc.oneof(fc.constantFrom("Hi ", " & ", "<b>", "", "{{ broken"), tag), { maxLength: 5 }).map((parts) =>
      parts.map((p) => (typeof p === "string" ? p : p.fallback === undefined ? `{{${p.name}}}` : `{{ ${p.name} | "${p.fallback}" }}`)).join(""),
    );
    const value = fc.option(fc.constantFrom("Ann", " ", "O'Neil & <Co>"), { nil: null });
    fc.assert(
      fc.property(template, fc.option(template, { nil: undefined }), fc.option(template, { nil: undefined }), value, value, value, fc.option(fc.constantFrom("Hello", "Re: Hello"), { nil: null }),
        (subject, text, html, firstName, company, role, thread) => {
          const variant = { label: "A", weight: 1, subject, ...(text === undefined ? {} : { text }), ...(html === undefined ? {} : { html }) };
          const l = lead({ firstName, company, customFields: role === null ? {} : { role } });
          const rendered = renderStep(variant, l, thread);
          const decided = decideStep(variant, l, thread);
          expect(decided).toEqual("skipped" in rendered ? { skipped: rendered.skipped } : { subject: rendered.rendered.subject, variant: "A" });
        }),
      { numRuns: 500 },
    );
  });
});
