from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path

urlpatterns = [
    path("", login_required(lambda request: render(request, "registry/home.html")), name="home"),
]
