/**
 * Escaping for the HTML and XML report writers. Every piece of text from a run (fleet names, topics,
 * assertion sources, error messages, chaos details) goes through one of these before it is written.
 */

/** Characters XML 1.0 cannot carry even escaped (C0 controls but tab, newline and carriage return; lone surrogates; U+FFFE/U+FFFF). */
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML or XML content and attribute values: `& < > " '` as entities, invalid characters as U+FFFD. */
export function escapeMarkup(text: string): string {
  return text.replace(XML_INVALID, '\uFFFD').replace(/[&<>"']/g, (c) => entities[c]!);
}
