// W7's task module for poolifier-web-worker: the shared tasks as a
// `ThreadWorker`'s named task functions (called with `execute(data, name)`).
import { ThreadWorker } from "poolifier-web-worker";
import { cpu, tiny } from "./w7_tasks.mjs";

export default new ThreadWorker({ cpu, tiny }, { maxInactiveTime: 600_000 });
