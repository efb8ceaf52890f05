import subprocess
import sys


def test_client_import_pulls_no_framework() -> None:
    code = (
        "import sys, tritonstack.client;"
        "bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'locust', 'sklearn', 'tqdm', 'rich') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_client_all_is_exported() -> None:
    import tritonstack.client as client

    for name in client.__all__:
        assert hasattr(client, name)
