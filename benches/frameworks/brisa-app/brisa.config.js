// One server process (Brisa forks one per CPU by default): the benchmark
// pins each server to one CPU and reads one process's CPU time.
export default { clustering: false };
