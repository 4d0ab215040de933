"""The names of the tagged outputs that the job's transforms give beside their main one."""

DEAD_LETTERS = "dead_letters"
