// Most tests wait on the broker, the database, sshd and child processes, not on the CPU, and each
// has its own database, virtual host, folders and ports: fixtures run side by side, their tests
// one after another. What shares process-wide or machine-wide state is [NonParallelizable] where
// it is: the in-process metrics some tests count exactly, the current folder, the inotify limit,
// and timings on the emulated long link. scripts/test --workers N overrides the level.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(4)]
