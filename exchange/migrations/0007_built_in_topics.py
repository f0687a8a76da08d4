from django.db import migrations


def install_the_topics(apps, schema_editor):
    """Nodes made before topics were resources get the built-in ones as Basic resources.

    It writes through today's services (exchange/topics.py), as the checks and search indexes
    of a topic are theirs; on a database with no nodes (a new one) it does nothing. Should a
    later migration change a model they touch, make this one a no-op and run topics_install
    for each node after migrating."""
    from exchange.topics import topics_install
    from nodes.models import Node

    for node in Node.objects.all():
        topics_install(node=node)


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0006_engine_role"),
        ("fhirserver", "__latest__"),
        ("nodes", "__latest__"),
    ]

    operations = [migrations.RunPython(install_the_topics, migrations.RunPython.noop)]
