# New projects bound every AI polygon part's Hausdorff distance to 2 px by default (issue 15);
# existing projects keep the bound they have.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0003_project_members_download_exports_projectmember"),
    ]

    operations = [
        migrations.AlterField(
            model_name="project",
            name="polygon_max_distance",
            field=models.FloatField(blank=True, default=2.0, null=True),
        ),
    ]
