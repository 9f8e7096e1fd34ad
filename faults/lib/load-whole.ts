import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openSafetensorsFile } from "../../src/runtime/io/index.js";
import { readTrainerFiles } from "../../src/runtime/train/checkpoint.js";
import { CaseFailure, expectThat } from "./tally.js";

/** Loads every file of a checkpoint folder as resume and PEFT would; throws a CaseFailure naming what is damaged. */
export async function loadWhole(dir: string, step: number): Promise<void> {
  try {
    const { state } = await readTrainerFiles(dir);
    expectThat(state.step === step, `${dir} holds step ${state.step}`);
    const st = await openSafetensorsFile(join(dir, "adapter_model.safetensors"));
    for (const n of st.tensors.keys()) await st.read(n);
    JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  } catch (e) {
    if (e instanceof CaseFailure) throw e;
    throw new CaseFailure(`${dir} does not load: ${(e as Error).message}`);
  }
}
