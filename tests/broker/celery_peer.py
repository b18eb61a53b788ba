#!/usr/bin/python3
"""The other side of the broker integration tests: Celery and kombu, used the
way the Codabench site and the Python compute worker use them.

    celery_peer.py send URL QUEUE RUN_ARGS_JSON [PRIORITY]  -> prints the task id
    celery_peer.py declare URL QUEUE NODENAME                (as the Python worker declares
                                                                its queue, pidbox and events)
    celery_peer.py revoke URL TASK_ID
    celery_peer.py events URL NODENAME SECONDS               -> prints what Celery's
                                                                event State saw of NODENAME
"""
import json
import sys

from celery import Celery
from kombu import Exchange, Queue


def worker_queue(name):
    # As the site's and the worker's celery_config declare it ("mostly so we
    # can set x-max-priority"); without it send_task declares the queue with
    # no arguments and RabbitMQ refuses.
    return Queue(name, Exchange(name), routing_key=name,
                 queue_arguments={'x-max-priority': 10})


def app_for(url, queue=None):
    app = Celery(broker=url)
    if queue:
        app.conf.task_queues = [worker_queue(queue)]
    return app


def send(url, queue, run_args, priority=0):
    app = app_for(url, queue)
    result = app.send_task('compute_worker_run', args=(json.loads(run_args),),
                           queue=queue, soft_time_limit=60, priority=int(priority))
    print(result.id)


def declare(url, queue, nodename):
    from celery.events.event import get_exchange
    app = app_for(url)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        worker_queue(queue)(channel).declare()
        app.control.mailbox.get_queue(nodename)(channel).declare()
        get_exchange(conn)(channel).declare()


def revoke(url, task_id):
    app_for(url).control.revoke(task_id, terminate=True)


def events(url, nodename, seconds):
    app = app_for(url)
    state = app.events.State()
    seen = []

    def on_event(event):
        if event.get('hostname') != nodename:
            return
        state.event(event)
        seen.append(event)
        if event['type'] == 'worker-heartbeat':
            receiver.should_stop = True

    with app.connection() as conn:
        receiver = app.events.Receiver(conn, handlers={'*': on_event})
        try:
            receiver.capture(limit=None, timeout=float(seconds), wakeup=False)
        except Exception:  # socket.timeout when nothing came
            pass
    worker = state.workers.get(nodename)
    print(json.dumps({
        'types': [e['type'] for e in seen],
        'last': seen[-1] if seen else None,
        'alive': bool(worker and worker.alive),
    }))


if __name__ == '__main__':
    commands = {'send': send, 'declare': declare, 'revoke': revoke, 'events': events}
    commands[sys.argv[1]](*sys.argv[2:])
