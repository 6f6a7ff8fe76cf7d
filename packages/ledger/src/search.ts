/** What a search hit points at. */
export interface SearchHit {
  kind: 'goal' | 'action';
  id: string;
  /** How it matched: the query is a prefix of its id, or every query word is in its text. */
  match: 'id-prefix' | 'text';
}

type DocKey = string;

const MIN_TOKEN = 2;
const ID_PREFIX_LENGTHS = [2, 3, 4] as const;
/** A query that looks like the start of an id: one run of id characters, as users paste from a listing. */
const ID_LIKE = /^[A-Za-z0-9_-]{2,64}$/;

export function tokenize(text: string): string[] {
  const tokens = new Set<string>();
  for (const word of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (word.length >= MIN_TOKEN) tokens.add(word);
  }
  return [...tokens];
}

function docKey(kind: SearchHit['kind'], id: string): DocKey {
  return `${kind === 'goal' ? 'g' : 'a'}:${id}`;
}

function hitOf(key: DocKey, match: SearchHit['match']): SearchHit {
  return { kind: key[0] === 'g' ? 'goal' : 'action', id: key.slice(2), match };
}

/**
 * Inverted index (token -> documents) over goal text and action results, plus an id-prefix index, both kept up
 * to date by the fold: a query costs the size of its smallest posting list, never a scan of the events.
 */
export class SearchIndex {
  private readonly postings = new Map<string, Set<DocKey>>();
  private readonly tokensOf = new Map<DocKey, string[]>();
  private readonly idPrefixes = new Map<string, Set<DocKey>>();
  /** Newer documents rank first; the fold's order of first indexing stands in for time. */
  private readonly rank = new Map<DocKey, number>();
  private nextRank = 0;

  /** Sets a document's text (replacing what it had) and registers its id for prefix lookups. */
  setDocument(kind: SearchHit['kind'], id: string, text: string): void {
    const key = docKey(kind, id);
    if (!this.rank.has(key)) {
      this.rank.set(key, this.nextRank++);
      for (const n of ID_PREFIX_LENGTHS) {
        if (id.length >= n) addTo(this.idPrefixes, id.slice(0, n).toLowerCase(), key);
      }
    }
    const before = this.tokensOf.get(key);
    const after = tokenize(text);
    if (before) for (const token of before) removeFrom(this.postings, token, key);
    for (const token of after) addTo(this.postings, token, key);
    this.tokensOf.set(key, after);
  }

  search(query: string, limit = 20): SearchHit[] {
    const trimmed = query.trim();
    const hits: SearchHit[] = [];
    const seen = new Set<DocKey>();
    if (ID_LIKE.test(trimmed)) {
      for (const key of this.newest(this.idPrefixMatches(trimmed.toLowerCase()), limit)) {
        hits.push(hitOf(key, 'id-prefix'));
        seen.add(key);
      }
    }
    for (const key of this.newest(this.textMatches(trimmed), limit + seen.size)) {
      if (hits.length >= limit) break;
      if (!seen.has(key)) hits.push(hitOf(key, 'text'));
    }
    return hits;
  }

  size(): number {
    return this.rank.size;
  }

  private idPrefixMatches(prefix: string): DocKey[] {
    const bucket = this.idPrefixes.get(prefix.slice(0, Math.min(prefix.length, 4)));
    if (!bucket) return [];
    const out: DocKey[] = [];
    for (const key of bucket) if (key.slice(2).toLowerCase().startsWith(prefix)) out.push(key);
    return out;
  }

  /** Documents that hold every token of the query: intersect, starting from the rarest token. */
  private textMatches(query: string): DocKey[] {
    const lists: Set<DocKey>[] = [];
    for (const token of tokenize(query)) {
      const list = this.postings.get(token);
      if (!list) return [];
      lists.push(list);
    }
    if (lists.length === 0) return [];
    lists.sort((a, b) => a.size - b.size);
    const [smallest, ...rest] = lists;
    const out: DocKey[] = [];
    for (const key of smallest!) if (rest.every((list) => list.has(key))) out.push(key);
    return out;
  }

  /** The `limit` newest of `keys`, newest first, without sorting every match of a common word. */
  private newest(keys: DocKey[], limit: number): DocKey[] {
    if (limit <= 0) return [];
    const top: Array<{ key: DocKey; rank: number }> = [];
    for (const key of keys) {
      const rank = this.rank.get(key)!;
      if (top.length === limit && rank <= top[top.length - 1]!.rank) continue;
      let i = top.length;
      while (i > 0 && top[i - 1]!.rank < rank) i--;
      top.splice(i, 0, { key, rank });
      if (top.length > limit) top.pop();
    }
    return top.map((t) => t.key);
  }
}

function addTo(map: Map<string, Set<DocKey>>, token: string, key: DocKey): void {
  let set = map.get(token);
  if (!set) {
    set = new Set();
    map.set(token, set);
  }
  set.add(key);
}

function removeFrom(map: Map<string, Set<DocKey>>, token: string, key: DocKey): void {
  const set = map.get(token);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) map.delete(token);
}
