// Campaign renders for the content tests and benchmark: personalised copies of a real template (names, companies, links substituted).
const firstNames = ["Ann", "Bartholomew", "Chloé", "Dmitri", "Esperanza", "Fatima", "Gunnar", "Hiroshi", "Ines", "Jamal", "Kateřina", "Luis"];
const lastNames = ["Okafor", "Lindqvist", "Moreau", "Nakamura", "Fernández-Ruiz", "Schmidt", "O'Brien", "Kowalczyk", "Haddad", "Singh"];
const companies = ["Acme Widgets Ltd", "Northwind Traders", "Globex Corporation", "Initech GmbH", "Umbrella Logistics", "Stark Fabrication", "Wayne Analytics"];

export interface Recipient {
  firstName: string;
  lastName: string;
  company: string;
  email: string;
  /** Unique per recipient, as tracking and unsubscribe links are. */
  token: string;
}

export function recipient(i: number): Recipient {
  const firstName = firstNames[i % firstNames.length]!;
  const lastName = lastNames[Math.floor(i / firstNames.length) % lastNames.length]!;
  const company = companies[i % companies.length]!;
  const token = `${i.toString(36)}x${((i * 2654435761) >>> 0).toString(36)}`;
  return { firstName, lastName, company, email: `${firstName}.${lastName}.${i}@${company.split(" ")[0]}.example`.toLowerCase(), token };
}

const mergeTag = /\{\{\s*([\w.]+)\s*\}\}|\*\|([A-Z_:]+)\|\*/g;

/**
 * Fills a Postmark (`{{name}}`) or Mailchimp (`*|FNAME|*`) template for one recipient: links get the
 * recipient's token, names and companies theirs, and a greeting line is added after <body>. Block tags
 * (`{{#each}}`, `*|IF:…|*`) are left as they are, as a renderer would leave their structure.
 */
export function personalise(template: string, r: Recipient): string {
  const filled = template.replace(mergeTag, (tag: string, mustache: string | undefined, mailchimp: string | undefined) => {
    const name = (mustache ?? mailchimp ?? "").toLowerCase();
    if (/^(end|if|ifnot|else)\b/.test(name)) return tag;
    if (name.includes("url") || name.includes("unsub") || name.includes("forward") || name.includes("profile") || name.includes("archive")) {
      return `https://links.example.com/${name.replace(/[^a-z]/g, "")}/${r.token}`;
    }
    if (name.includes("company") || name.includes("org")) return r.company;
    if (name.includes("email")) return r.email;
    if (name.includes("name") || name.includes("fname")) return `${r.firstName} ${r.lastName}`;
    return `${name}-${r.token}`;
  });
  const greeting = `<p>Hi ${r.firstName}, a note for ${r.company} (${r.email}).</p>`;
  const body = filled.search(/<body[^>]*>/i);
  if (body < 0) return greeting + filled;
  const end = filled.indexOf(">", body) + 1;
  return filled.slice(0, end) + greeting + filled.slice(end);
}
