from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0003_written_replies"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="error_detail",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="message",
            name="streamed_by",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
