"""Arguments that a shell, a template engine or a careless quoting layer would break.

One step, `echo_args`, receives `--output <dir>` followed by HOSTILE (literal values), the
str() of a few non-string literals, a string PipelineParameter whose default holds quotes and
`{{ }}`, and an int, a float and a bool PipelineParameter (PARAMETERS, in this order). The script writes json.dumps(sys.argv[3:]) to <output>/args.json; expected_args.json next
to this file holds the list every target must deliver, byte for byte (same json.dumps call;
regenerate it with `python make_expected.py` after editing HOSTILE).
Nothing here may be executed by a shell or rendered by Jinja: if a shell ever ran these arguments,
/tmp/mlpipe_hostile_args_pwned would appear.
"""

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

HOSTILE = [
    'it\'s "quoted"',
    "{{ ds }}",
    "{% raw %}x{% endraw %}",
    "$HOME; echo pwned",
    "line1\nline2",
    "tab\there",
    "ünïcødé ✓ 日本",
    "",
    "back\\slash\\",
    "--flag=a b",
    "`id` $(whoami) && touch /tmp/mlpipe_hostile_args_pwned | cat",
    "{# not a comment #}",
    "%(name)s {0} %s ${x}",
    "  leading and trailing spaces  ",
    "*.py ~ ?",
]

# A string parameter: v1 rejects newlines in defaults, but quotes and braces are fine.
hostile_param = PipelineParameter(
    name="hostile_param", default_value='say "cheese" & {{ params.mode }} it\'s $(date)'
)

# One parameter of each other type: a script gets str(value) (v1), so a bool arrives as True.
count = PipelineParameter(name="count", default_value=3)
ratio = PipelineParameter(name="ratio", default_value=0.5)
flag = PipelineParameter(name="flag", default_value=True)

args_out = OutputFileDatasetConfig(name="args_out")

echo_args = PythonScriptStep(
    name="echo_args",
    script_name="echo_args.py",
    source_directory="echo_src",
    arguments=["--output", args_out, *HOSTILE, 7, 2.5, True, hostile_param, count, ratio, flag],
)

pipeline = Pipeline(workspace=ws, steps=[echo_args])
