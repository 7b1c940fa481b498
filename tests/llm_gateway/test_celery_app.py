"""The Celery app and its embedded broker, which needs no server."""

import json

SEND_AND_RECEIVE = """
import json
from gateway_project.celery import app
with app.connection_for_write() as connection:
    queue = connection.SimpleQueue("gateway-broker-test")
    queue.put({"hello": "broker"})
    message = queue.get(timeout=10)
    message.ack()
    queue.close()
print(json.dumps({"payload": message.payload, "broker": app.conf.broker_url}))
"""


def test_the_embedded_broker_delivers_a_message_with_no_server(run_python, var_dir):
    result = run_python("-c", SEND_AND_RECEIVE)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"payload": {"hello": "broker"}, "broker": "filesystem://"}
    assert list((var_dir / "celery" / "queue").iterdir()) == []
