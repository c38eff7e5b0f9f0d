// Most tests wait on the broker, the database, sshd and child processes, not on the CPU, and each
// has its own database, virtual host, folders and ports: fixtures run side by side (four at a time:
// six loaded the 2 cores more and were not shown faster), their tests one after another. What
// shares process-wide or machine-wide state is [NonParallelizable] where it is: the in-process
// metrics some tests count exactly, the current folder, the inotify limit, and the copies timed
// against a bound. scripts/test --workers N overrides the level.
// NUnit runs the fixtures of a namespace in [Order], then by name (an Order counts within its namespace only): the longest (the fault scenarios
// of minutes, and the fast tier's longest) carry an Order, so that no long one starts last and
// leaves the other workers idle at the end. The non-parallelizable ones run alone after all others.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(4)]
