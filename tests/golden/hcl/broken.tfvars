region = "eu-west-1"
tags = {
  team = "payments"
