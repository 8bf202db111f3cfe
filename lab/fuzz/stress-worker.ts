/**
 * The piscina entry of the fuzzer's stress mode: client/worker.ts's session, in a thread
 * where the action-list behaviour is registered under its name (it reads its actions from
 * the session's params), so generated clients run in workers like built-in behaviours.
 */
import { registerBehaviour } from "../../client/behaviours/index.ts";
import { actionBehaviour } from "./behaviour.ts";

registerBehaviour(actionBehaviour(undefined));

export { default } from "../../client/worker.ts";
