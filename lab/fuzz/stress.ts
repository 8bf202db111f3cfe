export async function fuzzStress(
  _o: unknown,
): Promise<{ sessions: number; failures: number; findings: unknown[]; unreproduced: string[] }> {
  throw new Error("todo");
}
