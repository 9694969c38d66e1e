"""Executes one notebook headlessly on the gptq4j Java kernel with nbclient and saves it with its outputs.

    JUPYTER_PATH=notebooks/kernel/target/jupyter /usr/bin/python3 execute_notebook.py IN.ipynb OUT.ipynb [FAILED.ipynb]

Runs every code cell in order in the notebook's own directory; stops at the first cell error. On success writes
the executed notebook to OUT (which may be IN); on a cell error writes the partly executed notebook to FAILED
(when given), prints the error and exits 1. Uses Debian's python3-nbclient (nbformat, jupyter_client).
"""
import os
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

KERNEL = "gptq4j-java"


def coalesce_streams(nb):
    """Joins consecutive stdout (or stderr) outputs of a cell into one, as Jupyter shows them."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        cell.outputs = merged


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    src, out = argv[1], argv[2]
    failed = argv[3] if len(argv) == 4 else None
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=int(os.environ.get("GPTQ4J_CELL_TIMEOUT", "600")),
        startup_timeout=120,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        coalesce_streams(nb)
        if failed:
            os.makedirs(os.path.dirname(os.path.abspath(failed)), exist_ok=True)
            nbformat.write(nb, failed)
        print("notebook %s failed:\n%s" % (src, e), file=sys.stderr)
        return 1
    coalesce_streams(nb)
    # kernelspec metadata as the executing kernel reported it, so Jupyter opens the file on this kernel
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Java 17 (gptq4j)", "language": "java"}
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print("executed %s: %d code cells" % (src, sum(1 for c in nb.cells if c.cell_type == "code")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
