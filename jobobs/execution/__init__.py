"""Running jobs: the runtime, its control loop, the job context and the sinks it writes to,
the executors that run jobs, recovery, the process lifecycle and the logging bridge."""
