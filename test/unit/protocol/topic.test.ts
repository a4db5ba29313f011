import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  hasWildcard,
  isValidTopicFilter,
  isValidTopicName,
  parseSharedFilter,
  topicFilterProblem,
  topicMatches,
  topicNameProblem,
} from '../../../protocol/topic.js';

// Spec ids: where 3.1.1 and 5.0 number a rule differently both are given (see the header of protocol/topic.ts).
const NO_WILDCARD_IN_NAME = 'MQTT-4.7.1-1 (3.1.1) / MQTT-4.7.0-1 (5.0)';
const HASH_RULE = 'MQTT-4.7.1-2 (3.1.1) / MQTT-4.7.1-1 (5.0)';
const PLUS_RULE = 'MQTT-4.7.1-3 (3.1.1) / MQTT-4.7.1-2 (5.0)';

// ---------------------------------------------------------------------------------------------------------------
// Reference implementations: deliberately naive (split on '/').

function refMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#' && i === f.length - 1) return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function refValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every(
    (level, i) =>
      (!level.includes('+') && !level.includes('#')) || level === '+' || (level === '#' && i === levels.length - 1),
  );
}

function refValidName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

// ---------------------------------------------------------------------------------------------------------------

describe('topic names', () => {
  const valid: Array<[string, string]> = [
    ['a single level', 'sport'],
    ['several levels', 'sport/tennis/player1'],
    ['a lone separator (two empty levels) [MQTT-4.7.3-1 is about length, not levels]', '/'],
    ['a leading separator (4.7.3 example /finance)', '/finance'],
    ['a trailing separator', 'sport/'],
    ['empty levels in the middle', 'a//b'],
    ['spaces (4.7.3 example "Accounts payable")', 'Accounts payable'],
    ['a $SYS topic', '$SYS/monitor/Clients'],
    ['non-ASCII characters', 'capteur/température/€/😀'],
    ['exactly 65535 one-byte characters [MQTT-4.7.3-3]', 'a'.repeat(65_535)],
    ['exactly 65535 bytes of three-byte characters [MQTT-4.7.3-3]', '€'.repeat(21_845)],
    ['65532 bytes of four-byte characters [MQTT-4.7.3-3]', '😀'.repeat(16_383)],
  ];
  it.each(valid)('accepts %s', (_label, topic) => {
    expect(topicNameProblem(topic)).toBeNull();
    expect(isValidTopicName(topic)).toBe(true);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['the empty string [MQTT-4.7.3-1]', '', /empty/],
    [`'+' [${NO_WILDCARD_IN_NAME}]`, 'sport/+', /wildcard '\+'/],
    [`'#' [${NO_WILDCARD_IN_NAME}]`, 'sport/#', /wildcard '#'/],
    [`'+' inside a level [${NO_WILDCARD_IN_NAME}]`, 'sport+', /wildcard/],
    [`'#' inside a level [${NO_WILDCARD_IN_NAME}]`, 'a#b', /wildcard/],
    ['U+0000 [MQTT-4.7.3-2]', 'a\u0000b', /U\+0000/],
    ['65536 one-byte characters [MQTT-4.7.3-3]', 'a'.repeat(65_536), /65536 bytes/],
    ['65538 bytes of three-byte characters [MQTT-4.7.3-3]', '€'.repeat(21_846), /65538 bytes/],
    ['65536 bytes of four-byte characters [MQTT-4.7.3-3]', '😀'.repeat(16_384), /65536 bytes/],
    ['an unpaired high surrogate (not UTF-8)', 'a/\ud800', /surrogate/],
    ['an unpaired low surrogate (not UTF-8)', '\udc00/a', /surrogate/],
  ];
  it.each(invalid)('rejects %s', (_label, topic, reason) => {
    expect(topicNameProblem(topic)).toMatch(reason);
    expect(isValidTopicName(topic)).toBe(false);
  });
});

describe('topic filters', () => {
  const valid: Array<[string, string]> = [
    ['a plain topic', 'sport/tennis/player1'],
    [`'#' alone [${HASH_RULE}]`, '#'],
    [`'sport/tennis/#' [${HASH_RULE}]`, 'sport/tennis/#'],
    [`'/#' [${HASH_RULE}]`, '/#'],
    [`'+' alone [${PLUS_RULE}]`, '+'],
    [`'+/tennis/#' [${PLUS_RULE}]`, '+/tennis/#'],
    [`'sport/+/player1' [${PLUS_RULE}]`, 'sport/+/player1'],
    [`'+/+' [${PLUS_RULE}]`, '+/+'],
    [`'/+' [${PLUS_RULE}]`, '/+'],
    [`'+/' [${PLUS_RULE}]`, '+/'],
    [`'+/+/#' [${PLUS_RULE}]`, '+/+/#'],
    ['a $SYS filter', '$SYS/#'],
    ['$share without a slash is an ordinary filter', '$share'],
    ['$SHARE (case differs) is an ordinary filter', '$SHARE/g/+'],
    ['exactly 65535 bytes [MQTT-4.7.3-3]', 'a'.repeat(65_533) + '/#'],
  ];
  it.each(valid)('accepts %s', (_label, filter) => {
    expect(topicFilterProblem(filter)).toBeNull();
    expect(isValidTopicFilter(filter)).toBe(true);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['the empty string [MQTT-4.7.3-1]', '', /empty/],
    [`'sport/tennis#' [${HASH_RULE}]`, 'sport/tennis#', /'#' must occupy an entire level/],
    [`'sport/tennis/#/ranking' [${HASH_RULE}]`, 'sport/tennis/#/ranking', /'#' must be the last level/],
    [`'#/' [${HASH_RULE}]`, '#/', /'#' must be the last level/],
    [`'##' [${HASH_RULE}]`, '##', /'#' must occupy an entire level/],
    [`'#a' [${HASH_RULE}]`, '#a', /'#' must occupy an entire level/],
    [`'sport+' [${PLUS_RULE}]`, 'sport+', /'\+' must occupy an entire level/],
    [`'+sport' [${PLUS_RULE}]`, '+sport', /'\+' must occupy an entire level/],
    [`'a/++/b' [${PLUS_RULE}]`, 'a/++/b', /'\+' must occupy an entire level/],
    [`'a/b+c/d' [${PLUS_RULE}]`, 'a/b+c/d', /'\+' must occupy an entire level/],
    ['U+0000 [MQTT-4.7.3-2]', 'a/\u0000/#', /U\+0000/],
    ['65536 bytes [MQTT-4.7.3-3]', 'a'.repeat(65_534) + '/#', /65536 bytes/],
    ['an unpaired surrogate (not UTF-8)', '+/\ud83d', /surrogate/],
  ];
  it.each(invalid)('rejects %s', (_label, filter, reason) => {
    expect(topicFilterProblem(filter)).toMatch(reason);
    expect(isValidTopicFilter(filter)).toBe(false);
  });
});

describe('shared subscriptions', () => {
  const parsed: Array<[string, { group: string; filter: string } | null]> = [
    ['$share/g/a/+', { group: 'g', filter: 'a/+' }],
    ['$share/consumer1/sport/tennis/+', { group: 'consumer1', filter: 'sport/tennis/+' }],
    ['$share/g/#', { group: 'g', filter: '#' }],
    ['$share/g//', { group: 'g', filter: '/' }],
    ['$share/g/$SYS/#', { group: 'g', filter: '$SYS/#' }],
    ['$share/g', { group: 'g', filter: '' }],
    ['$share/g/', { group: 'g', filter: '' }],
    ['$share/', { group: '', filter: '' }],
    ['$share//a', { group: '', filter: 'a' }],
    ['$share', null],
    ['$SHARE/g/a', null],
    ['share/g/a', null],
    ['a/$share/g/b', null],
    ['+/+', null],
  ];
  it.each(parsed)('parseSharedFilter(%j)', (filter, expected) => {
    expect(parseSharedFilter(filter)).toEqual(expected);
  });

  const valid = ['$share/g/a/+', '$share/consumer1/sport/tennis/+', '$share/g/#', '$share/g/+', '$share/g//', '$share/g/$SYS/#'];
  it.each(valid)('accepts %j [MQTT-4.8.2-1] [MQTT-4.8.2-2]', (filter) => {
    expect(topicFilterProblem(filter)).toBeNull();
    expect(isValidTopicFilter(filter)).toBe(true);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['an empty share name [MQTT-4.8.2-1]', '$share//a', /share name must not be empty/],
    ['an empty share name and no filter [MQTT-4.8.2-1]', '$share/', /share name must not be empty/],
    ["'+' in the share name [MQTT-4.8.2-2]", '$share/g+/a', /share name must not contain/],
    ["'#' in the share name [MQTT-4.8.2-2]", '$share/#/a', /share name must not contain/],
    ["a share name alone as '+' [MQTT-4.8.2-2]", '$share/+/a', /share name must not contain/],
    ["no '/' after the share name [MQTT-4.8.2-2]", '$share/g', /topic filter after the share name/],
    ['an empty filter after the share name [MQTT-4.8.2-2]', '$share/g/', /topic filter after the share name/],
    [`an invalid inner filter (${HASH_RULE})`, '$share/g/a/#/b', /'#' must be the last level/],
    [`an invalid inner filter (${PLUS_RULE})`, '$share/g/a+', /'\+' must occupy an entire level/],
    ['U+0000 in the share name [MQTT-4.7.3-2]', '$share/g\u0000/a', /U\+0000/],
    ['more than 65535 bytes overall [MQTT-4.7.3-3]', '$share/g/' + 'a'.repeat(65_527), /65536 bytes/],
  ];
  it.each(invalid)('rejects %s', (_label, filter, reason) => {
    expect(topicFilterProblem(filter)).toMatch(reason);
    expect(isValidTopicFilter(filter)).toBe(false);
  });
});

describe('hasWildcard', () => {
  it.each([
    ['a/b', false],
    ['$SYS/monitor', false],
    ['$share/g/a', false],
    ['+', true],
    ['#', true],
    ['a/+/b', true],
    ['a/#', true],
    ['$share/g/a/+', true],
  ] as Array<[string, boolean]>)('hasWildcard(%j) is %s', (filter, expected) => {
    expect(hasWildcard(filter)).toBe(expected);
  });
});

describe('topicMatches', () => {
  // [filter, topic, matches]
  const cases: Array<[string, string, boolean]> = [
    // 4.7.1.2 multi-level wildcard
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/tennis/player1/#', 'sport/tennis/player2', false],
    ['sport/tennis/player1/#', 'sport/tennis/player10', false],
    ['sport/tennis/player1/#', 'sport/tennis', false],
    ['sport/#', 'sport', true],
    ['#', 'sport', true],
    ['#', 'sport/tennis/player1', true],
    ['#', '/', true],
    ['/#', '/finance', true],
    ['/#', 'finance', false],
    // 4.7.1.3 single-level wildcard
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player2', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['+', 'finance', true],
    ['+/tennis/#', 'sport/tennis/player1/ranking', true],
    ['+/tennis/#', 'sport/tennis', true],
    ['+/tennis/#', 'sport/golf', false],
    ['sport/+/player1', 'sport/tennis/player1', true],
    ['sport/+/player1', 'sport//player1', true],
    ['sport/+/player1', 'sport/tennis/player2', false],
    ['+/+/+', 'a/b', false],
    ['+/+', 'a/b/c', false],
    // 4.7.2 topics beginning with $ [MQTT-4.7.2-1]
    ['#', '$SYS/monitor/Clients', false],
    ['#', '$SYS', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['+', '$SYS', false],
    ['+/#', '$SYS/a', false],
    ['$SYS/#', '$SYS/monitor/Clients', true],
    ['$SYS/#', '$SYS', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['$SYS/monitor/Clients', '$SYS/monitor/Clients', true],
    ['+/monitor/Clients', 'SYS/monitor/Clients', true],
    ['a/$b', 'a/$b', true],
    ['+/$b', 'a/$b', true],
    // 4.7.3 topic semantics: case sensitive, '/finance' differs from 'finance', spaces are ordinary characters
    ['ACCOUNTS', 'Accounts', false],
    ['Accounts', 'Accounts', true],
    ['Accounts payable', 'Accounts payable', true],
    ['finance', '/finance', false],
    ['/finance', 'finance', false],
    ['/', '/', true],
    ['a/b', 'a/bc', false],
    ['a/bc', 'a/b', false],
    ['a/b/', 'a/b', false],
    ['a/b', 'a/b/', false],
    ['a/#', 'a/', true],
    ['a/+/#', 'a', false],
    ['a/+/#', 'a/b', true],
    ['capteur/+/°C', 'capteur/température/°C', true],
  ];
  it.each(cases)('topicMatches(%j, %j) is %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
    expect(refMatches(filter, topic)).toBe(expected); // keeps the reference honest
  });
});

describe('properties', () => {
  const topicLevel = fc.constantFrom('', '$SYS', 'a', 'b');
  const filterLevel = fc.constantFrom('', '$SYS', 'a', 'b', '+', '#');
  const topicArb = fc
    .array(topicLevel, { minLength: 1, maxLength: 6 })
    .map((levels) => levels.join('/'))
    .filter((t) => t.length > 0);
  const filterArb = fc
    .array(filterLevel, { minLength: 1, maxLength: 6 })
    .map((levels) => levels.join('/'))
    .filter(refValidFilter);
  // A filter that matches `topic` by construction, so that matches are not rare.
  const matchingPair = topicArb.chain((topic) => {
    const levels = topic.split('/');
    return fc
      .tuple(
        fc.array(fc.boolean(), { minLength: levels.length, maxLength: levels.length }),
        fc.integer({ min: 0, max: levels.length }),
        fc.boolean(),
      )
      .map(([plus, cut, hash]) => {
        const kept = levels.slice(0, cut).map((level, i) => (plus[i] ? '+' : level));
        const filter = hash || cut === 0 ? [...kept, '#'].join('/') : kept.join('/');
        return [filter === '' ? '#' : filter, topic] as const;
      });
  });

  it('topicMatches agrees with a split-based reference on generated valid filters and topics', () => {
    fc.assert(
      fc.property(filterArb, topicArb, (filter, topic) => {
        expect(isValidTopicFilter(filter)).toBe(true);
        expect(isValidTopicName(topic)).toBe(true);
        expect(topicMatches(filter, topic)).toBe(refMatches(filter, topic));
      }),
      { numRuns: 2000 },
    );
  });

  it('topicMatches agrees with the reference on filters derived from the topic (mostly matches)', () => {
    fc.assert(
      fc.property(matchingPair, ([filter, topic]) => {
        expect(isValidTopicFilter(filter)).toBe(true);
        expect(topicMatches(filter, topic)).toBe(refMatches(filter, topic));
      }),
      { numRuns: 2000 },
    );
  });

  it('a topic used as a filter matches itself and nothing else in the generated space', () => {
    fc.assert(
      fc.property(topicArb, topicArb, (a, b) => {
        expect(topicMatches(a, a)).toBe(true);
        expect(topicMatches(a, b)).toBe(a === b);
      }),
      { numRuns: 1000 },
    );
  });

  const charSoup = fc
    .array(fc.constantFrom('a', 'b', '/', '+', '#', '$', '\u0000'), { maxLength: 8 })
    .map((cs) => cs.join(''));

  it('validators agree with split-based references on arbitrary strings over a small alphabet', () => {
    fc.assert(
      fc.property(charSoup, (s) => {
        expect(isValidTopicName(s)).toBe(refValidName(s));
        expect(isValidTopicFilter(s)).toBe(refValidFilter(s));
        expect(topicNameProblem(s) === null).toBe(refValidName(s));
        expect(topicFilterProblem(s) === null).toBe(refValidFilter(s));
      }),
      { numRuns: 3000 },
    );
  });

  it('shared filters are valid exactly when the share name and the inner filter are', () => {
    const group = fc.constantFrom('', 'g', 'grp', 'g+', '#', '$SYS');
    const inner = fc.oneof(filterArb, charSoup);
    fc.assert(
      fc.property(group, inner, (g, f) => {
        const shared = `$share/${g}/${f}`;
        expect(parseSharedFilter(shared)).toEqual({ group: g, filter: f });
        const expected = g.length > 0 && !g.includes('+') && !g.includes('#') && refValidFilter(f);
        expect(isValidTopicFilter(shared)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});
