"""Channel credentials move from a JSON column to a Fernet-encrypted text column.

Forward: every row's credentials are encrypted with the newest key in OMNI_CREDENTIALS_KEYS.
Backward: decrypted into JSON again; refused, naming the channels, if a row no key opens.
"""

from django.db import migrations

import channels.credentials_store


def encrypt_rows(apps, schema_editor):
    Channel = apps.get_model("channels", "Channel")
    for pk, plain in Channel.objects.values_list("pk", "credentials"):
        Channel.objects.filter(pk=pk).update(credentials_encrypted=plain or {})


def decrypt_rows(apps, schema_editor):
    Channel = apps.get_model("channels", "Channel")
    unreadable = []
    for pk, name, stored in Channel.objects.values_list("pk", "name", "credentials_encrypted"):
        if isinstance(stored, channels.credentials_store.UnreadableCredentials):
            unreadable.append(f"{name} (id {pk})")
        else:
            Channel.objects.filter(pk=pk).update(credentials=stored)
    if unreadable:
        raise RuntimeError(
            "Cannot decrypt the credentials of "
            + ", ".join(unreadable)
            + " with any key in OMNI_CREDENTIALS_KEYS; add the missing key and migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [("channels", "0005_scan_safety_valve")]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="credentials_encrypted",
            field=channels.credentials_store.EncryptedJSONField(
                blank=True, default=dict, editable=False
            ),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
        migrations.RemoveField(model_name="channel", name="credentials"),
        migrations.RenameField(
            model_name="channel", old_name="credentials_encrypted", new_name="credentials"
        ),
    ]
