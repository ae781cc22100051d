// bring-up placeholder; replaced by the Distill implementation
