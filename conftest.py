# nameko runs on eventlet: patch before anything imports socket/threading (nameko's own advice).
import eventlet

eventlet.monkey_patch()

pytest_plugins = ["carbon_dev.testing"]
