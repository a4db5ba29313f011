/**
 * Topic names, topic filters and shared subscriptions (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).
 *
 * Conformance ids: the wildcard rules are numbered differently in the two versions of the spec.
 *   - wildcards not allowed in a topic name:  [MQTT-4.7.1-1] in 3.1.1, [MQTT-4.7.0-1] in 5.0
 *   - '#' on its own level and last:          [MQTT-4.7.1-2] in 3.1.1, [MQTT-4.7.1-1] in 5.0
 *   - '+' occupies an entire level:           [MQTT-4.7.1-3] in 3.1.1, [MQTT-4.7.1-2] in 5.0
 * The rest are the same in both: [MQTT-4.7.2-1] ('$' topics vs leading wildcards), [MQTT-4.7.3-1] (non-empty),
 * [MQTT-4.7.3-2] (no U+0000), [MQTT-4.7.3-3] (at most 65535 bytes as UTF-8). Shared subscriptions
 * ([MQTT-4.8.2-1], [MQTT-4.8.2-2]) exist only in 5.0; these helpers always treat `$share/` as a shared filter.
 *
 * Everything here works on JavaScript strings (UTF-16). A string that holds an unpaired surrogate cannot be
 * encoded as well-formed UTF-8 ([MQTT-1.5.4-1] in 5.0, [MQTT-1.5.3-1] in 3.1.1), so it is reported as invalid too.
 */

export interface SharedFilter {
  group: string;
  filter: string;
}

const SLASH = 0x2f; // '/'
const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const DOLLAR = 0x24; // '$'

const MAX_TOPIC_BYTES = 65_535;
const SHARE_PREFIX = '$share/';

/**
 * Problems common to names and filters: U+0000, unpaired surrogates and the encoded length.
 * Returns null when the string is fine. Does not check emptiness.
 */
function encodingProblem(s: string, what: string): string | null {
  let bytes = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) return `${what} must not contain U+0000`;
      bytes += 1;
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (next < 0xdc00 || next > 0xdfff) return `${what} contains an unpaired surrogate (not valid UTF-8)`;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return `${what} contains an unpaired surrogate (not valid UTF-8)`;
    } else {
      bytes += 3;
    }
  }
  if (bytes > MAX_TOPIC_BYTES) return `${what} is ${bytes} bytes as UTF-8, more than ${MAX_TOPIC_BYTES}`;
  return null;
}

/** Returns null when valid, else a short human reason (e.g. "'#' must be the last level"). */
export function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return 'topic name must not be empty';
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return `topic name must not contain the wildcard '${c === PLUS ? '+' : '#'}'`;
  }
  return encodingProblem(topic, 'topic name');
}

export function isValidTopicName(topic: string): boolean {
  return topicNameProblem(topic) === null;
}

/** Wildcard placement in s[start..]: '+' and '#' must occupy a whole level, '#' only as the last one. */
function wildcardProblem(s: string, start: number): string | null {
  const n = s.length;
  for (let i = start; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c !== PLUS && c !== HASH) continue;
    const wholeLevel = (i === start || s.charCodeAt(i - 1) === SLASH) && (i + 1 === n || s.charCodeAt(i + 1) === SLASH);
    if (c === PLUS) {
      if (!wholeLevel) return "'+' must occupy an entire level";
    } else {
      if (!wholeLevel) return "'#' must occupy an entire level";
      if (i + 1 !== n) return "'#' must be the last level";
    }
  }
  return null;
}

/**
 * Validates a filter, including `$share/{group}/{filter}` (group non-empty, no '+', '#' or '/'; filter non-empty
 * and itself valid) [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.8.2-1], [MQTT-4.8.2-2].
 * '+' and '#' must occupy a whole level; '#' only last.
 */
export function topicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'topic filter must not be empty';
  let start = 0;
  if (filter.startsWith(SHARE_PREFIX)) {
    const groupStart = SHARE_PREFIX.length;
    let slash = filter.indexOf('/', groupStart);
    if (slash < 0) slash = filter.length;
    if (slash === groupStart) return 'shared subscription share name must not be empty';
    for (let i = groupStart; i < slash; i++) {
      const c = filter.charCodeAt(i);
      if (c === PLUS || c === HASH) return "shared subscription share name must not contain '+' or '#'";
    }
    if (slash + 1 >= filter.length) return 'shared subscription must have a topic filter after the share name';
    start = slash + 1;
  }
  return wildcardProblem(filter, start) ?? encodingProblem(filter, 'topic filter');
}

export function isValidTopicFilter(filter: string): boolean {
  return topicFilterProblem(filter) === null;
}

/**
 * '$share/g/a/+' -> { group: 'g', filter: 'a/+' }; non-shared -> null. Does not validate:
 * '$share/g' gives { group: 'g', filter: '' } and '$share/' gives { group: '', filter: '' }.
 */
export function parseSharedFilter(filter: string): SharedFilter | null {
  if (!filter.startsWith(SHARE_PREFIX)) return null;
  const groupStart = SHARE_PREFIX.length;
  const slash = filter.indexOf('/', groupStart);
  if (slash < 0) return { group: filter.slice(groupStart), filter: '' };
  return { group: filter.slice(groupStart, slash), filter: filter.slice(slash + 1) };
}

/** True when the filter contains '+' or '#' (for a valid filter, that means it has a wildcard level). */
export function hasWildcard(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}

/**
 * Does `topic` (a valid topic name) match `filter` (a valid non-shared filter)? Implements [MQTT-4.7.2-1]:
 * topics starting with '$' are not matched by filters starting with '+' or '#'. 'a/#' matches 'a' (parent level).
 * '+' matches an empty level.
 *
 * Hot path: walks both strings by index, no allocation. A '+' or '#' that does not occupy a whole level
 * (only possible in an invalid filter) is compared literally.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  if (tl > 0 && topic.charCodeAt(0) === DOLLAR && fl > 0) {
    const f0 = filter.charCodeAt(0);
    if ((f0 === PLUS || f0 === HASH) && (fl === 1 || filter.charCodeAt(1) === SLASH)) return false;
  }
  let fi = 0;
  let ti = 0;
  // Invariant at the top of each iteration: fi starts a filter level, ti starts a topic level.
  for (;;) {
    const fc = fi < fl ? filter.charCodeAt(fi) : -1;
    const levelIsWildcard = (fc === PLUS || fc === HASH) && (fi + 1 === fl || filter.charCodeAt(fi + 1) === SLASH);
    if (levelIsWildcard && fc === HASH && fi + 1 === fl) return true;
    if (levelIsWildcard && fc === PLUS) {
      fi++;
      while (ti < tl && topic.charCodeAt(ti) !== SLASH) ti++;
    } else {
      while (fi < fl) {
        const c = filter.charCodeAt(fi);
        if (c === SLASH) break;
        if (ti >= tl || topic.charCodeAt(ti) !== c) return false;
        fi++;
        ti++;
      }
      if (ti < tl && topic.charCodeAt(ti) !== SLASH) return false;
    }
    // Both levels ended: fi is at '/' or the end of the filter, ti at '/' or the end of the topic.
    const filterDone = fi === fl;
    if (ti === tl) {
      // Topic exhausted: match if the filter is too, or only '/#' remains ('#' also matches the parent level).
      return filterDone || (fi + 2 === fl && filter.charCodeAt(fi + 1) === HASH);
    }
    if (filterDone) return false;
    fi++;
    ti++;
  }
}
