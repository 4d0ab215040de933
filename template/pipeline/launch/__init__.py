"""What runs at launch, on the Flex Template launcher VM or the user's machine, before any worker starts.

The parameters (`options`), where and how the job runs (`environment`), every check that can be
made before work starts (`validation` and the `*_checks` it calls, `feeding` for how records fit
the model), and what a local run shows (`progress`, `summary`). Its product is a `config.JobConfig`;
nothing here is imported by job-time code. Nothing here clears an earlier run's outputs: the job
replaces them as its last step, once it has succeeded (`job.replace`).
"""
