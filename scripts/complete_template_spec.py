"""Completes a Flex Template spec written by `gcloud dataflow flex-template build` with the fields it drops.

gcloud copies only `name`, `description`, `parameters` (and `yamlDefinition`) of the metadata file into the
spec's `metadata`, so a streaming spec loses `streaming`, `supportsAtLeastOnce`, `supportsExactlyOnce` and
`defaultStreamingMode`: the fields that make the Console treat it as a streaming template and offer its
streaming modes (Dataflow's TemplateMetadata; "Set the pipeline streaming mode", custom templates). Google's own
templates write their spec without gcloud (DataflowTemplates' TemplateSpecsGenerator); this build keeps gcloud
and adds the fields back, copied from the same metadata file. The build runs it with the Python of the Cloud SDK
image, so it uses the standard library only:

    gcloud storage cat gs://B/spec.json \
      | python3 scripts/complete_template_spec.py - --metadata-file=metadata-streaming.json > spec.json
    python3 scripts/complete_template_spec.py spec.json --metadata-file=metadata-streaming.json   # in place
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# TemplateMetadata fields of a metadata file that gcloud leaves out of the spec it writes.
DROPPED_BY_GCLOUD = ("streaming", "supportsAtLeastOnce", "supportsExactlyOnce", "defaultStreamingMode")
STREAMING_MODES = ("UNSPECIFIED", "EXACTLY_ONCE", "AT_LEAST_ONCE")  # defaultStreamingMode's values


class SpecError(Exception):
    """A spec or metadata file that cannot be completed: one line for the build's log."""


def check_metadata(metadata: dict) -> None:
    """The streaming fields as the Dataflow API takes them: a default mode only where both modes are supported."""
    mode = metadata.get("defaultStreamingMode")
    if mode is not None and mode not in STREAMING_MODES:
        raise SpecError(f"defaultStreamingMode is {mode!r}, not one of {', '.join(STREAMING_MODES)}")
    if mode not in (None, "UNSPECIFIED") and not (
        metadata.get("supportsAtLeastOnce") and metadata.get("supportsExactlyOnce")
    ):
        raise SpecError("defaultStreamingMode is valid only where supportsAtLeastOnce and supportsExactlyOnce are true")
    modes = [name for name in DROPPED_BY_GCLOUD[1:] if metadata.get(name)]
    if modes and metadata.get("streaming") is not True:
        raise SpecError(f"{', '.join(modes)} set in a template that is not streaming: true")


def complete(spec: dict, metadata: dict) -> dict:
    """The spec with the fields gcloud dropped copied from the metadata file it was built from."""
    if not isinstance(spec.get("metadata"), dict):
        raise SpecError("the spec has no metadata: was it built with --metadata-file?")
    if spec["metadata"].get("name") != metadata.get("name"):
        raise SpecError(
            f"the spec was built from metadata named {spec['metadata'].get('name')!r}, "
            f"not {metadata.get('name')!r}: the wrong metadata file?"
        )
    check_metadata(metadata)
    completed = {**spec, "metadata": dict(spec["metadata"])}
    for name in DROPPED_BY_GCLOUD:
        if name in metadata:
            completed["metadata"][name] = metadata[name]
    return completed


def spec_json(spec: dict) -> str:
    """Written as gcloud writes a spec: sorted keys, 4-space indents."""
    return json.dumps(spec, sort_keys=True, indent=4, separators=(",", ": "), ensure_ascii=False) + "\n"


def _read_json(source: str, what: str) -> dict:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        value = json.loads(text)
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot read the {what} {source}: {error}") from None
    if not isinstance(value, dict):
        raise SpecError(f"the {what} {source} is not a JSON object")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("spec", help="the spec gcloud wrote: a local file, or - for stdin (then written to stdout)")
    parser.add_argument("--metadata-file", required=True, help="the metadata file the spec was built from")
    parser.add_argument("--output", help="where to write the completed spec (default: over spec; - for stdout)")
    args = parser.parse_args(argv)
    try:
        completed = complete(_read_json(args.spec, "spec"), _read_json(args.metadata_file, "metadata file"))
    except SpecError as error:
        print(f"complete_template_spec: {error}", file=sys.stderr)
        return 1
    output = args.output or args.spec
    if output == "-":
        sys.stdout.write(spec_json(completed))
    else:
        Path(output).write_text(spec_json(completed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
