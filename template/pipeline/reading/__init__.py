"""Reading input files, Beam-free: decompression that reports damage (`input_files`) and records in
batches (`readers`). The job's sources and the launch's checks of the first records both read
through here, so that a launch sees the records exactly as the job will.
"""
