# The admin of images is registered by labeling/admin.py: its preview draws the image's current
# annotation, which is labeling's (images sits below labeling and imports none of it).
