/**
 * The guided fuzzer's state and its choice of the next case (AFL++/libFuzzer's loop):
 *
 *   - every feature any case reached, with how many cases reached it;
 *   - the corpus in memory: the cases that reached a feature no case before them had;
 *   - the next case: a mutation (mutate.ts) of a corpus entry chosen with a weight that
 *     favours entries holding rare features (an entry is worth what its rarest paths are
 *     worth: the sum of 1 / hits over its features), spliced with another entry; or a
 *     fresh case from the blind generator, in the blind generator's own seed order, so a
 *     guided run's fresh cases are exactly the first cases of a blind run. The share of
 *     fresh cases follows which of the two has been bringing new features lately, but never
 *     drops below one half (MIN_FRESH, below), and is handed out as a quota, not by coin
 *     flips: after n cases a guided run has run at least floor(n / 2) of the blind run's
 *     cases, so whatever a blind run finds in the first half of its cases, the guided run
 *     with the same seed finds in the same number of cases (test/fuzz-guided.test.ts).
 *
 * Deterministic: case i's choices come from its own Rng (mutate.ts caseRng), and the state
 * only changes in `observe`, which the loop calls in case order. The weights are refreshed
 * between batches only (fuzz.ts; new entries every batch, all of them every REWEIGH_EVERY
 * batches), so the cases of one batch depend only on what was observed before the batch:
 * that is what lets a batch run on any number of workers with the same result.
 */
import { actionCount } from "./actions.ts";
import type { FuzzCase } from "./case.ts";
import { caseRng, mutateCase } from "./mutate.ts";

export interface GuideEntry {
  case: FuzzCase;
  features: readonly string[];
  /** Actions each client performed in the entry's run (where it stopped). */
  executed?: readonly number[];
}

/**
 * The least share of fresh cases. Mutations pay more new features per case once the corpus
 * has grown (0.3 against 0.1 on wlroots-0.15 after 1,000 cases), which took the old
 * epsilon-greedy share down to 0.2 and the average to about 0.4: a guided run then reached
 * the blind run's case 538 (wlroots-0.15's SIGSEGV, seed 1) only at its case 1,292, after
 * the bench's 15 s. AFL++ and libFuzzer have no blind generator to keep up with; here the
 * goal is to find everything blind finds as well, and only fresh cases as they are
 * guarantee that (the two blind SIGSEGV cases with a corpus entry's actions appended kept
 * their finding in 17 and 11 of 20 tries), so at least half of the cases are fresh: every
 * finding blind makes in the first half of its cases is kept, and mutations have the rest.
 * At 0.5 (by coin flips, before the quota) the guided run reached that SIGSEGV at case 902
 * (seed 90000's: 622 rather than 1,046), with 1,168 features at 1,300 cases against 1,235
 * at 0.2 (blind: about 1,100).
 */
export const MIN_FRESH = 0.5;
/** The share of fresh cases while they bring more new features than mutations. */
export const MAX_FRESH = 0.8;
/**
 * Batches between two full recomputations of the entries' weights (new entries are
 * weighed as they come). Weighing every entry every batch costs entries × features: at
 * 1,844 entries (16,000 libwayland cases) the loop's own work had grown from 0.6 to 2-4 ms
 * a case, against a 6-15 ms case (load ~10), and it kept growing with the corpus — much of
 * why a guided case cost 1.7 times a blind one over ten minutes. Every 32nd batch (512
 * cases) it stays at 0.2-0.3 ms a case; every 8th it was back to 0.5-1.1 ms at 16,000 cases
 * and reached no more features (3,043 against 3,059, seed 5). AFL++ too recomputes its
 * favoured entries now and then, not on every execution.
 */
export const REWEIGH_EVERY = 32;
/**
 * The share of mutations whose parent is an entry that broke an invariant: AFL's crash
 * exploration (afl-fuzz -C, "crash exploration mode": mutate crashing inputs to find
 * other crashes and other states of the same fault). A failure is a place the simulation
 * rarely gets to, and its neighbours — the same lie with another file cut, another pool
 * above it, another client beside it — break other invariants at other places; by rarity
 * alone a failing entry is one of thousands (its `fail:` feature's weight falls as the
 * failure recurs). The signature is drawn first and then one of its entries, so a rare
 * signature is explored as much as a common one.
 */
export const EXPLORE_FAILURES = 0.2;

export class Guide {
  /** Feature -> cases that reached it. */
  readonly hits = new Map<string, number>();
  readonly entries: GuideEntry[] = [];
  /** Kept entries that broke an invariant, by the `fail:` feature they reached. */
  private readonly failing = new Map<string, GuideEntry[]>();
  private failingKeys: string[] = [];
  /** Fresh cases handed out so far (the blind sequence's next index). */
  fresh = 0;
  private cumulative: number[] = [];
  private total = 0;
  /** Batches so far (reweigh calls). */
  private batches = 0;
  /**
   * New features per case, as moving averages, for fresh cases and for mutations: the
   * share of fresh cases follows whichever source has been paying (a two-armed bandit),
   * between MIN_FRESH and MAX_FRESH so that neither ever stops.
   */
  private gain = { fresh: 1, mutated: 1 };
  private share: number;
  /**
   * Fresh cases owed (stratified, as a quota): each case adds `share`, a fresh case takes
   * one. Coin flips at 0.5 leave a run of 1,000 cases 30 or more fresh cases behind its
   * quota one time in twenty; the quota never is.
   */
  private credit = 0;

  constructor(
    /** The share of fresh (blind) cases, 0..1; undefined: adaptive (above). */
    private readonly freshShare?: number,
    /** The share of mutations of failing entries (EXPLORE_FAILURES; 0: by weight only). */
    private readonly exploreFailures = EXPLORE_FAILURES,
  ) {
    this.share = freshShare ?? 0.5;
  }

  /**
   * Takes a case's features into account; true when it reached something new. `source`
   * says where the case came from (undefined: the corpus on disk, no source to credit).
   */
  observe(
    c: FuzzCase,
    features: Iterable<string>,
    keep = true,
    executed?: readonly number[],
    source?: "fresh" | "mutated",
  ): boolean {
    const list = [...features];
    let gained = 0;
    for (const f of list) {
      const n = this.hits.get(f);
      if (n === undefined) gained++;
      this.hits.set(f, (n ?? 0) + 1);
    }
    if (source) this.gain[source] = 0.9 * this.gain[source] + 0.1 * gained;
    if (gained && keep) {
      const e = { case: c, features: list, executed };
      this.entries.push(e);
      const fail = list.find((f) => f.startsWith("fail:"));
      if (fail !== undefined) {
        const of = this.failing.get(fail);
        if (of) of.push(e);
        else {
          this.failing.set(fail, [e]);
          this.failingKeys.push(fail);
        }
      }
    }
    return gained > 0;
  }

  /**
   * Called once per batch: the fresh share, the weights of the entries kept since the last
   * call, and every REWEIGH_EVERY batches all the weights again from the hit counts.
   */
  reweigh(): void {
    if (this.freshShare === undefined) {
      const { fresh, mutated } = this.gain;
      // Mostly fresh cases while they pay more; otherwise as many mutations as fresh cases.
      this.share = fresh > mutated ? MAX_FRESH : MIN_FRESH;
    }
    if (this.batches++ % REWEIGH_EVERY === 0) {
      this.cumulative = [];
      this.total = 0;
    }
    for (let i = this.cumulative.length; i < this.entries.length; i++) {
      const e = this.entries[i];
      let w = 0;
      for (const f of e.features) w += 1 / (this.hits.get(f) ?? 1);
      // Smaller programs run faster and mutate more to the point (AFL favours them too).
      w /= 1 + actionCount(e.case.program) / 32;
      this.total += w;
      this.cumulative.push(this.total);
    }
  }

  /** A failing entry: a signature drawn uniformly (r1), then one of its entries (r2). */
  private pickFailing(r1: number, r2: number): GuideEntry {
    const of = this.failing.get(this.failingKeys[Math.floor(r1 * this.failingKeys.length)])!;
    return of[Math.floor(r2 * of.length)];
  }

  private pick(r: number): GuideEntry {
    const x = r * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return this.entries[lo];
  }

  /**
   * Case number `i` (of the run, its seed stream `seedOf`): a mutation of an entry, or the
   * blind generator's next case (`freshCase(seedOf(fresh))`).
   */
  next(
    i: number,
    seedOf: (j: number) => number,
    freshCase: (seed: number) => FuzzCase,
  ): { case: FuzzCase; fresh: boolean } {
    const rng = caseRng(seedOf(i), 0);
    this.credit += this.share;
    if (!this.cumulative.length || this.total <= 0 || this.credit >= 1) {
      this.credit = Math.max(0, this.credit - 1);
      return { case: freshCase(seedOf(this.fresh++)), fresh: true };
    }
    const explore = this.failingKeys.length > 0 && rng.next() < this.exploreFailures;
    const parent = explore ? this.pickFailing(rng.next(), rng.next()) : this.pick(rng.next());
    const donor = this.pick(rng.next());
    return { case: mutateCase(rng, parent.case, donor.case, parent.executed), fresh: false };
  }
}
