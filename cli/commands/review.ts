/**
 * `shmlab review`: a protocol proposal against a base protocol, on the whole matrix. The
 * proposal is Wayland protocol XML plus an optional rules module (protocol/proposal.ts),
 * or a built-in variant; the report says which cells change and why, from the runs.
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { type Review, review } from "../../lab/review.ts";
import { renderReview } from "../../lab/review-text.ts";
import { ensureProposalVariant, proposalName } from "../../protocol/proposal.ts";
import { getVariant, type ProtocolVariant } from "../../protocol/variant.ts";
import { addSelection, type Opts, optionsFrom, runWithProgress, workersFrom } from "./compare.ts";

interface ReviewOpts extends Opts {
  protocol?: string;
  rules?: string;
  against: string;
  timelines: string;
}

const badOption = (message: string) =>
  Object.assign(new Error(message), { code: "SHMLAB_ERR_BAD_OPTION" });

/** A built-in variant by name, or a proposal loaded from XML (and rules) and registered. */
async function variantFrom(nameOrXml: string, rules?: string): Promise<ProtocolVariant> {
  if (!nameOrXml.endsWith(".xml")) {
    if (rules) throw badOption("--rules goes with --protocol FILE.xml");
    return (await ensureProposalVariant(nameOrXml)) ?? getVariant(nameOrXml);
  }
  return (await ensureProposalVariant(proposalName(nameOrXml, rules))) as ProtocolVariant;
}

async function sides(o: ReviewOpts): Promise<[ProtocolVariant, ProtocolVariant]> {
  if (o.protocol) {
    if (o.variant.length) throw badOption("give --protocol or two --variant options, not both");
    const base = await variantFrom(o.against);
    return [base, await variantFrom(o.protocol, o.rules)];
  }
  if (o.variant.length !== 2)
    throw badOption("review needs --protocol FILE.xml [--rules FILE.ts], or two --variant options");
  if (o.rules) throw badOption("--rules goes with --protocol FILE.xml");
  return [await variantFrom(o.variant[0]), await variantFrom(o.variant[1])];
}

export function register(program: Command): void {
  addSelection(
    program
      .command("review")
      .description(
        "a protocol proposal (Wayland XML + rules) against a base protocol: the cells that change, and why",
      ),
  )
    .option("--protocol <file.xml>", "the proposal: protocol XML extending protocol/xml/")
    .option(
      "--rules <file.ts>",
      "the proposal's semantics: a module whose default export is ProposalRules",
    )
    .option("--against <name|file.xml>", "the base to compare with", "standard")
    .option(
      "--variant <name>",
      "a built-in protocol variant (give two instead of --protocol)",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option("--timelines <n>", "changed cells whose timelines the terminal shows", "6")
    .option("--json <file>", "write the review (changed cells with both runs' records) as JSON")
    .option("--html <file>", "write the review as a self-contained HTML page")
    .action(async (o: ReviewOpts) => {
      const [base, proposal] = await sides(o);
      const timelines = Number(o.timelines);
      if (!Number.isInteger(timelines) || timelines < 0)
        throw badOption(`--timelines must be an integer >= 0, not ${o.timelines}`);
      // One side after the other (each spread over the --workers threads).
      const both = [];
      for (const v of [base, proposal])
        both.push(
          await runWithProgress(
            optionsFrom(o, v.name),
            o.progress,
            Boolean(o.html),
            Boolean(o.html),
            workersFrom(o),
          ),
        );
      const [a, b] = both;
      const r: Review = review(
        a,
        b,
        { name: base.name, description: base.description },
        { name: proposal.name, description: proposal.description },
      );
      console.log(renderReview(r, process.stdout.columns || 120, timelines));
      if (o.json) {
        writeFileSync(o.json, JSON.stringify(r, null, 1));
        console.log(`\nreview written to ${o.json}`);
      }
      if (o.html) {
        const { renderReviewHtml } = await import("../../lab/review-html.ts");
        writeFileSync(o.html, renderReviewHtml(r));
        console.log(`review written to ${o.html}`);
      }
    });
}
