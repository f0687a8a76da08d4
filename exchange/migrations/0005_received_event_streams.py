from django.db import migrations


def name_the_streams(apps, schema_editor):
    """Events received before streams were named came from the sender's own stream."""
    ReceivedEvent = apps.get_model("exchange", "ReceivedEvent")
    for event in ReceivedEvent.objects.filter(subscription="").select_related("node", "partner"):
        event.subscription = f"urn:dmed:{event.partner.ods_code}:{event.node.ods_code}"
        event.save(update_fields=["subscription"])


class Migration(migrations.Migration):
    dependencies = [("exchange", "0004_subscriptions")]

    operations = [migrations.RunPython(name_the_streams, migrations.RunPython.noop)]
