from tests.servers import azurite_server, object_stores, s3_server  # noqa: F401
