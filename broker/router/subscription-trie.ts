/**
 * The broker's subscription index: a trie over topic-filter levels, consulted for every PUBLISH.
 *
 * Each node stands for one filter (the path of levels from the root). A node keeps
 *   - its literal children in a Map keyed by level text ('' is a valid, empty level),
 *   - its '+' and '#' children in dedicated fields (a valid filter never has '+' or '#' as literal text),
 *   - the non-shared subscriptions on its filter (clientId -> S) and the shared ones (group -> clientId -> S).
 * Maps are created lazily and dropped when they empty; nodes with nothing left are pruned on remove, so
 * add/remove cycles do not leak.
 *
 * Matching ([MQTT-4.7.2-1] and the '#' parent-level rule are handled here, see `match`) walks the topic by
 * index with `indexOf('/')`, slicing a level only when a node has literal children to look it up in. The walk
 * uses an explicit stack (reused between calls) instead of recursion, so a filter with tens of thousands of
 * levels (a 65535-byte filter can have 65536 empty levels) cannot overflow the call stack.
 */

/** The minimum the broker stores per subscription; the trie itself only needs `clientId`. */
export interface TrieSubscription {
  clientId: string;
  /** Full filter as subscribed, including any `$share/{group}/` prefix. */
  filter: string;
  shareGroup?: string;
}

export interface TrieEntry<S> {
  /** The filter without the `$share` prefix (the trie path). */
  filter: string;
  group?: string;
  sub: S;
}

const SLASH = 0x2f; // '/'
const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const DOLLAR = 0x24; // '$'

class TrieNode<S> {
  /** Literal children keyed by level text. */
  children: Map<string, TrieNode<S>> | null = null;
  plus: TrieNode<S> | null = null;
  hash: TrieNode<S> | null = null;
  /** Non-shared subscriptions on this node's filter, by client id. */
  subs: Map<string, S> | null = null;
  /** Shared subscriptions on this node's filter: group -> client id -> subscription. */
  shared: Map<string, Map<string, S>> | null = null;
  /** The filter this node stands for (set on creation; '' for the root). */
  readonly filter: string;

  constructor(
    readonly parent: TrieNode<S> | null,
    /** The level text leading here from the parent ('+' / '#' for the wildcard slots). */
    readonly level: string,
    filter: string,
  ) {
    this.filter = filter;
  }

  isEmpty(): boolean {
    return this.subs === null && this.shared === null && this.children === null && this.plus === null && this.hash === null;
  }
}

/**
 * Checks what the trie relies on: non-empty, '+' and '#' each occupy a whole level, '#' only last.
 * (Encoding rules and `$share` syntax are the caller's business; see protocol/topic.ts.)
 */
function filterShapeProblem(filter: string): string | null {
  const n = filter.length;
  if (n === 0) return 'topic filter must not be empty';
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c !== PLUS && c !== HASH) continue;
    const wholeLevel =
      (i === 0 || filter.charCodeAt(i - 1) === SLASH) && (i + 1 === n || filter.charCodeAt(i + 1) === SLASH);
    if (!wholeLevel) return `'${c === PLUS ? '+' : '#'}' must occupy an entire level`;
    if (c === HASH && i + 1 !== n) return "'#' must be the last level";
  }
  return null;
}

export class SubscriptionTrie<S extends { clientId: string } = TrieSubscription> {
  private readonly root = new TrieNode<S>(null, '', '');
  private count = 0;
  /** DFS stack reused by non-nested `match` calls: node and the index in the topic where its next level starts. */
  private readonly stackNodes: (TrieNode<S> | null)[] = [];
  private readonly stackPos: number[] = [];
  private matching = false;

  /** Number of (client, group, filter) entries. */
  get size(): number {
    return this.count;
  }

  /** Number of trie nodes, not counting the root (0 for an empty trie). For tests and debugging; O(nodes). */
  get nodeCount(): number {
    let n = 0;
    const stack: TrieNode<S>[] = [this.root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node !== this.root) n++;
      if (node.children !== null) for (const child of node.children.values()) stack.push(child);
      if (node.plus !== null) stack.push(node.plus);
      if (node.hash !== null) stack.push(node.hash);
    }
    return n;
  }

  /**
   * Adds or replaces the entry for (sub.clientId, group, filter). `filter` is a valid topic filter WITHOUT the
   * `$share/{group}/` prefix; `group` is the share name, or undefined for a non-shared subscription.
   * Returns the previous value if one was replaced. Throws a RangeError for a filter whose wildcards are misplaced.
   */
  add(filter: string, group: string | undefined, sub: S): S | undefined {
    const problem = filterShapeProblem(filter);
    if (problem !== null) throw new RangeError(`SubscriptionTrie.add(${JSON.stringify(filter)}): ${problem}`);

    let node = this.root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      if (end < 0) end = filter.length;
      const level = filter.slice(start, end);
      const nodeFilter = filter.slice(0, end);
      if (level === '+') {
        node = node.plus ??= new TrieNode(node, level, nodeFilter);
      } else if (level === '#') {
        node = node.hash ??= new TrieNode(node, level, nodeFilter);
      } else {
        const children = (node.children ??= new Map());
        let child = children.get(level);
        if (child === undefined) {
          child = new TrieNode(node, level, nodeFilter);
          children.set(level, child);
        }
        node = child;
      }
      if (end === filter.length) break;
      start = end + 1;
    }

    let members: Map<string, S>;
    if (group === undefined) {
      members = node.subs ??= new Map();
    } else {
      const shared = (node.shared ??= new Map());
      let m = shared.get(group);
      if (m === undefined) {
        m = new Map();
        shared.set(group, m);
      }
      members = m;
    }
    const previous = members.get(sub.clientId);
    members.set(sub.clientId, sub);
    if (previous === undefined) this.count++;
    return previous;
  }

  /** Removes the entry for (clientId, group, filter) and prunes nodes left empty. Returns the removed value. */
  remove(filter: string, group: string | undefined, clientId: string): S | undefined {
    const node = this.find(filter);
    if (node === undefined) return undefined;

    let removed: S | undefined;
    if (group === undefined) {
      if (node.subs === null) return undefined;
      removed = node.subs.get(clientId);
      if (removed === undefined) return undefined;
      node.subs.delete(clientId);
      if (node.subs.size === 0) node.subs = null;
    } else {
      const members = node.shared?.get(group);
      if (members === undefined) return undefined;
      removed = members.get(clientId);
      if (removed === undefined) return undefined;
      members.delete(clientId);
      if (members.size === 0) {
        node.shared!.delete(group);
        if (node.shared!.size === 0) node.shared = null;
      }
    }
    this.count--;
    this.prune(node);
    return removed;
  }

  /**
   * Calls `onSub` for every non-shared subscription whose filter matches `topic`, and `onShared` once per
   * matching (group, filter) with that group's members (a live, read-only view) so the caller can pick one.
   * Overlapping filters of one client (e.g. 'a/+' and 'a/#') are reported separately.
   *
   * [MQTT-4.7.2-1]: a topic beginning with '$' is not matched by filters whose first level is '+' or '#'.
   * 'a/#' also matches 'a' (the parent level). '+' matches an empty level.
   *
   * The callbacks must not add or remove entries while the match runs (which entries are reported is then
   * unspecified). Calling `match` again from a callback is fine.
   */
  match(
    topic: string,
    onSub: (sub: S) => void,
    onShared: (group: string, filter: string, members: ReadonlyMap<string, S>) => void,
  ): void {
    const nested = this.matching;
    const nodes = nested ? [] : this.stackNodes;
    const positions = nested ? [] : this.stackPos;
    this.matching = true;
    const tl = topic.length;
    let sp = 0;
    try {
      const root = this.root;
      // The root level, handled apart for [MQTT-4.7.2-1]. A topic always has at least one level.
      let end = topic.indexOf('/');
      if (end < 0) end = tl;
      if (!(tl > 0 && topic.charCodeAt(0) === DOLLAR)) {
        if (root.hash !== null) report(root.hash, onSub, onShared);
        if (root.plus !== null) {
          nodes[sp] = root.plus;
          positions[sp++] = end + 1;
        }
      }
      if (root.children !== null) {
        const child = root.children.get(topic.slice(0, end));
        if (child !== undefined) {
          nodes[sp] = child;
          positions[sp++] = end + 1;
        }
      }

      // Each stacked node has matched the topic levels before `start`; `start > tl` means all levels are used.
      while (sp > 0) {
        const node = nodes[--sp]!;
        const start = positions[sp]!;
        nodes[sp] = null; // do not keep pruned nodes (and their subscriptions) alive from the reused stack
        if (start > tl) {
          // Topic exhausted: this node's filter matches exactly, and '<filter>/#' matches as the parent level.
          report(node, onSub, onShared);
          if (node.hash !== null) report(node.hash, onSub, onShared);
          continue;
        }
        if (node.hash !== null) report(node.hash, onSub, onShared);
        if (node.plus === null && node.children === null) continue;
        let levelEnd = topic.indexOf('/', start);
        if (levelEnd < 0) levelEnd = tl;
        if (node.plus !== null) {
          nodes[sp] = node.plus;
          positions[sp++] = levelEnd + 1;
        }
        if (node.children !== null) {
          const child = node.children.get(topic.slice(start, levelEnd));
          if (child !== undefined) {
            nodes[sp] = child;
            positions[sp++] = levelEnd + 1;
          }
        }
      }
    } finally {
      this.matching = nested;
      // Only reached with sp > 0 if a callback threw: drop the leftover references.
      while (sp > 0) nodes[--sp] = null;
    }
  }

  /** All entries (non-shared and shared), for $SYS counts and debugging. Do not modify the trie while iterating. */
  *entries(): IterableIterator<TrieEntry<S>> {
    const stack: TrieNode<S>[] = [this.root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node.subs !== null) for (const sub of node.subs.values()) yield { filter: node.filter, sub };
      if (node.shared !== null) {
        for (const [group, members] of node.shared) {
          for (const sub of members.values()) yield { filter: node.filter, group, sub };
        }
      }
      if (node.hash !== null) stack.push(node.hash);
      if (node.plus !== null) stack.push(node.plus);
      if (node.children !== null) for (const child of node.children.values()) stack.push(child);
    }
  }

  /** The node for `filter`, or undefined if it does not exist. Never creates nodes. */
  private find(filter: string): TrieNode<S> | undefined {
    if (filter.length === 0) return undefined;
    let node: TrieNode<S> | null | undefined = this.root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      if (end < 0) end = filter.length;
      const level = filter.slice(start, end);
      if (level === '+') node = node.plus;
      else if (level === '#') node = node.hash;
      else node = node.children?.get(level);
      if (node === null || node === undefined) return undefined;
      if (end === filter.length) return node;
      start = end + 1;
    }
  }

  /** Detaches `node` and then each ancestor that is left with nothing, stopping at the root. */
  private prune(node: TrieNode<S>): void {
    let current = node;
    while (current.parent !== null && current.isEmpty()) {
      const parent: TrieNode<S> = current.parent;
      if (current === parent.plus) parent.plus = null;
      else if (current === parent.hash) parent.hash = null;
      else if (parent.children !== null) {
        parent.children.delete(current.level);
        if (parent.children.size === 0) parent.children = null;
      }
      current = parent;
    }
  }
}

function report<S>(
  node: TrieNode<S>,
  onSub: (sub: S) => void,
  onShared: (group: string, filter: string, members: ReadonlyMap<string, S>) => void,
): void {
  if (node.subs !== null) for (const sub of node.subs.values()) onSub(sub);
  if (node.shared !== null) for (const [group, members] of node.shared) onShared(group, node.filter, members);
}
